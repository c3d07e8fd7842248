// A small SVG line-chart writer for sweeps: a grid of panels sharing one
// categorical x axis (the offered request rates), each with a few series.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace tandem::bench {

struct ChartSeries {
  std::string name;
  std::vector<double> y;  // one value per x label
};

struct ChartPanel {
  std::string title;
  std::string y_label;
  std::vector<ChartSeries> series;
};

// Round a positive maximum up to 1, 2 or 5 times a power of ten (0 -> 1).
double nice_ceiling(double v);

std::string render_svg(const std::string& title, const std::string& x_label, const std::vector<std::string>& x_labels,
                       const std::vector<ChartPanel>& panels, int columns);

Status write_text_file(const std::string& path, const std::string& text);

}  // namespace tandem::bench
