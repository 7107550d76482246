# Thin wrappers over the commands the README shows.
.PHONY: build test quickstart fuzz bench lint cross

build:
	go build -o bin/trusthandoff ./cmd/trusthandoff

test:
	go test -race ./...

quickstart:
	./scripts/quickstart.sh

fuzz:
	FUZZTIME=$${FUZZTIME:-2m} ./scripts/fuzz.sh

bench:
	go test -run '^$$' -bench . -count 6 ./... | tee bench.txt
	go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da bench.txt

lint:
	test -z "$$(gofmt -l .)"
	go vet ./...
	go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

# The library and CLI build for macOS (Intel, Apple silicon) and Windows too.
cross:
	for t in darwin/amd64 darwin/arm64 windows/amd64 windows/arm64; do \
		echo "-- $$t"; GOOS=$${t%/*} GOARCH=$${t#*/} go build ./... || exit 1; \
	done
