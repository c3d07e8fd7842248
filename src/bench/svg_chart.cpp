#include "bench/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace tandem::bench {
namespace {

const char* const kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};

std::string esc(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string fmt(double v) {
  char buf[32];
  if (v != 0 && (std::fabs(v) >= 1e5 || std::fabs(v) < 1e-2)) std::snprintf(buf, sizeof buf, "%.2g", v);
  else std::snprintf(buf, sizeof buf, "%g", std::round(v * 100) / 100);
  return buf;
}

}  // namespace

double nice_ceiling(double v) {
  if (!(v > 0) || !std::isfinite(v)) return 1;
  double p = std::pow(10.0, std::floor(std::log10(v)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (v <= m * p * (1 + 1e-12)) return m * p;
  return 10 * p;
}

std::string render_svg(const std::string& title, const std::string& x_label, const std::vector<std::string>& x_labels,
                       const std::vector<ChartPanel>& panels, int columns) {
  constexpr int kPanelW = 420, kPanelH = 300, kTop = 40;
  constexpr int kLeft = 70, kRight = 20, kPlotTop = 30, kBottom = 80;  // inside a panel
  columns = std::max(1, columns);
  int rows = static_cast<int>((panels.size() + columns - 1) / columns);
  int width = columns * kPanelW, height = kTop + rows * kPanelH;
  std::ostringstream os;
  os << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
     << "\" viewBox=\"0 0 " << width << " " << height << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
     << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
     << "<text x=\"" << width / 2 << "\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">" << esc(title)
     << "</text>\n";
  const int n = static_cast<int>(x_labels.size());
  for (size_t p = 0; p < panels.size(); ++p) {
    const auto& panel = panels[p];
    int ox = static_cast<int>(p % columns) * kPanelW, oy = kTop + static_cast<int>(p / columns) * kPanelH;
    int x0 = ox + kLeft, x1 = ox + kPanelW - kRight, y0 = oy + kPanelH - kBottom, y1 = oy + kPlotTop;
    double ymax = 0;
    for (const auto& s : panel.series)
      for (double v : s.y)
        if (std::isfinite(v)) ymax = std::max(ymax, v);
    ymax = nice_ceiling(ymax);
    auto px = [&](int i) { return n <= 1 ? (x0 + x1) / 2.0 : x0 + (x1 - x0) * (i + 0.5) / n; };
    auto py = [&](double v) { return y0 - (y0 - y1) * v / ymax; };
    os << "<g>\n<text x=\"" << (x0 + x1) / 2 << "\" y=\"" << oy + 18 << "\" text-anchor=\"middle\" font-size=\"13\">"
       << esc(panel.title) << "</text>\n";
    for (int t = 0; t <= 5; ++t) {  // horizontal grid and y ticks
      double v = ymax * t / 5;
      os << "<line x1=\"" << x0 << "\" x2=\"" << x1 << "\" y1=\"" << py(v) << "\" y2=\"" << py(v)
         << "\" stroke=\"#ddd\"/>\n<text x=\"" << x0 - 6 << "\" y=\"" << py(v) + 4 << "\" text-anchor=\"end\">"
         << fmt(v) << "</text>\n";
    }
    os << "<line x1=\"" << x0 << "\" x2=\"" << x0 << "\" y1=\"" << y0 << "\" y2=\"" << y1 << "\" stroke=\"black\"/>\n"
       << "<line x1=\"" << x0 << "\" x2=\"" << x1 << "\" y1=\"" << y0 << "\" y2=\"" << y0 << "\" stroke=\"black\"/>\n";
    for (int i = 0; i < n; ++i)
      os << "<text x=\"" << px(i) << "\" y=\"" << y0 + 16 << "\" text-anchor=\"middle\">" << esc(x_labels[i])
         << "</text>\n";
    os << "<text x=\"" << (x0 + x1) / 2 << "\" y=\"" << y0 + 32 << "\" text-anchor=\"middle\">" << esc(x_label)
       << "</text>\n<text transform=\"translate(" << ox + 16 << "," << (y0 + y1) / 2
       << ") rotate(-90)\" text-anchor=\"middle\">" << esc(panel.y_label) << "</text>\n";
    for (size_t s = 0; s < panel.series.size(); ++s) {
      const auto& series = panel.series[s];
      const char* color = kColors[s % (sizeof kColors / sizeof kColors[0])];
      std::ostringstream pts;
      for (int i = 0; i < n && i < static_cast<int>(series.y.size()); ++i)
        if (std::isfinite(series.y[i])) pts << px(i) << "," << py(series.y[i]) << " ";
      os << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"2\" points=\"" << pts.str() << "\"/>\n";
      for (int i = 0; i < n && i < static_cast<int>(series.y.size()); ++i)
        if (std::isfinite(series.y[i]))
          os << "<circle cx=\"" << px(i) << "\" cy=\"" << py(series.y[i]) << "\" r=\"3\" fill=\"" << color
             << "\"><title>" << esc(series.name) << " @ " << esc(x_labels[i]) << ": " << fmt(series.y[i])
             << "</title></circle>\n";
      int lx = x0 + static_cast<int>(s % 3) * 110, ly = y0 + 50 + static_cast<int>(s / 3) * 16;  // legend
      os << "<line x1=\"" << lx << "\" x2=\"" << lx + 18 << "\" y1=\"" << ly - 4 << "\" y2=\"" << ly - 4
         << "\" stroke=\"" << color << "\" stroke-width=\"2\"/>\n<text x=\"" << lx + 22 << "\" y=\"" << ly << "\">"
         << esc(series.name) << "</text>\n";
    }
    os << "</g>\n";
  }
  os << "</svg>\n";
  return os.str();
}

Status write_text_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return invalid_argument(path + ": cannot open for writing");
  out << text;
  out.close();
  if (!out) return internal_error(path + ": write failed");
  return ok_status();
}

}  // namespace tandem::bench
