// Each subcommand of `tandem` is one function taking the arguments after its name
// (argv[0] is the subcommand). Returns the process exit code.
#pragma once

namespace tandem::cli {

int run_version(int argc, char** argv);
int run_generate(int argc, char** argv);
int run_plan(int argc, char** argv);
int run_tokenize(int argc, char** argv);
int run_detokenize(int argc, char** argv);
int run_quantize(int argc, char** argv);
int run_eval(int argc, char** argv);
int run_bench(int argc, char** argv);
int run_chat_template(int argc, char** argv);
int run_serve(int argc, char** argv);
int run_synth(int argc, char** argv);

}  // namespace tandem::cli
