# aelp — see README.md. Every target works on a fresh machine with Go 1.26;
# kafka-up/kafka-down need a Docker engine, the real-Kafka tests need Java 17
# and Maven.
GO      ?= go
BIN     := bin/aelp
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: build run test test-real bench lint kafka-up kafka-down clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/aelp

## run: the whole pipeline on an embedded broker (no set-up needed)
run: build
	./$(BIN) run

## test: vet and the race-enabled suite on the embedded broker
## (AELP_TEST_KAFKA=real runs the integration tests against real Apache Kafka)
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

## test-real: the suite against real Apache Kafka 4.4.0 (Java 17+ and Maven;
## the jars are resolved from Maven Central into ~/.cache/aelp once)
test-real:
	bash scripts/kafka/fetch.sh >/dev/null
	AELP_TEST_KAFKA=real $(GO) test -race -count=1 -timeout 25m ./...

## bench: aelp bench (pipeline stages beside raw kafka-go), then the Go
## benchmarks: the cores' micro-benchmarks at -benchtime 1s, the Kafka-side
## ones (each op a whole multi-second workload) at 3 iterations
bench: build
	./$(BIN) bench
	$(GO) test -run '^$$' -bench . -benchmem ./schemas ./learner/replay ./learner/ppo ./producers/sim ./consumers/classify
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 3x ./app/bench ./internal/kafkax

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

kafka-up:
	docker compose -f docker-compose.kafka.yml up -d --wait kafka

kafka-down:
	docker compose -f docker-compose.kafka.yml down -v

clean:
	rm -rf bin data out
