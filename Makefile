# The README's two commands: `make serve` and `make test`. Each does its own set-up.
.PHONY: serve test build setup clean

serve:
	@scripts/serve.sh

test:
	@scripts/test.sh

build:
	@scripts/setup.sh
	@scripts/build.sh

setup:
	@scripts/setup.sh

clean:
	rm -rf build
