.PHONY: run demo test setup bench lint

# Set up everything and run the web server plus all workers (DEMO=1 adds the offline demo).
run:
	bash scripts/run.sh

demo:
	DEMO=1 bash scripts/run.sh

# Set up everything and run the test suite.
test:
	bash scripts/test.sh

setup:
	bash scripts/setup.sh

lint:
	.venv/bin/ruff check .

bench:
	.venv/bin/python bench/throughput.py
