# rollcall: make run (local stack), make test (everything), make bench, make fuzz, make load.
# Every target installs what it needs: Go modules, DynamoDB Local (Maven Central; or set
# DYNAMODB_ENDPOINT, see the README), the SES emulator (npm) and the SAM CLI + cfn-lint (PyPI,
# in .venv).

SHELL := /bin/bash
GO ?= go
PORT ?= 3000
export PORT
export SAM_CLI_TELEMETRY := 0

DDB_VERSION := 2.6.1
DDB_LIB := .local/dynamodb/lib
DDB_JAR := $(DDB_LIB)/DynamoDBLocal-$(DDB_VERSION).jar
# DYNAMODB_ENDPOINT=http://host:port runs the local stack and the tests on a DynamoDB-compatible
# endpoint you start yourself, and DynamoDB Local is neither downloaded nor started (see the
# README's Local tools: its licence). make bench always uses DynamoDB Local.
DYNAMODB_ENDPOINT ?=
ifneq ($(DYNAMODB_ENDPOINT),)
DDB_DEP :=
export ROLLCALL_TEST_DYNAMODB_ENDPOINT := $(DYNAMODB_ENDPOINT)
else
DDB_DEP := $(DDB_JAR)
endif
EMQ_VERSION := 1.7.1
EMQ_LIB := .local/elasticmq/lib
EMQ_JAR := $(EMQ_LIB)/elasticmq-server_2.13-$(EMQ_VERSION).jar
S3_BIN := .local/bin/s3-local
SES_BIN := infra/ses-local/node_modules/aws-ses-v2-local/dist/cli.js
VENV := .venv
SAM := $(VENV)/bin/sam
PY_STAMP := $(VENV)/.installed

# Lambda binaries: static, arm64, no RPC shim, stripped (SAM's makefile build method calls
# build-<LogicalId> with ARTIFACTS_DIR set).
LAMBDA_BUILD = CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -tags lambda.norpc -trimpath -ldflags="-s -w" -o $(ARTIFACTS_DIR)/bootstrap

.PHONY: all deps browser go-deps dynamodb-moto run test test-go lint sam-validate deploy-check sam-build token invoke bench fuzz load clean reset-data build smoke smoke-local

all: test

## deps: install everything the local stack and the tests need
deps: go-deps $(DDB_DEP) $(EMQ_JAR) $(S3_BIN) $(SES_BIN) $(PY_STAMP) browser

## browser: headless Chromium for the invitation page's browser test (Debian's package)
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null || \
	  { if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	      echo "installing Debian's chromium for the browser test"; \
	      DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	    else echo "Chromium is needed for the browser test: install it (Debian: apt-get install chromium)"; exit 1; fi; }

go-deps:
	@$(GO) mod download

$(DDB_JAR): infra/dynamodb-local/pom.xml
	@command -v java >/dev/null || { echo "Java 17+ is required for DynamoDB Local"; exit 1; }
	@command -v mvn >/dev/null || { echo "Maven is required to fetch DynamoDB Local"; exit 1; }
	mvn -q -B -f infra/dynamodb-local/pom.xml dependency:copy-dependencies -DoutputDirectory=$(CURDIR)/$(DDB_LIB)
	@touch $@

## dynamodb-moto: moto's DynamoDB on DYNAMODB_PORT (default 8000), for DYNAMODB_ENDPOINT (own venv)
MOTO_VENV := .local/moto-venv
dynamodb-moto:
	@test -x $(MOTO_VENV)/bin/pip || python3 -m venv $(MOTO_VENV)
	$(MOTO_VENV)/bin/pip install -q --disable-pip-version-check -r infra/dynamodb-moto/requirements.txt
	$(MOTO_VENV)/bin/python infra/dynamodb-moto/serve.py $(or $(DYNAMODB_PORT),8000)

# ElasticMQ (the local SQS for roster jobs), from Maven Central like DynamoDB Local.
$(EMQ_JAR): infra/elasticmq/pom.xml
	@command -v java >/dev/null || { echo "Java 17+ is required for ElasticMQ"; exit 1; }
	@command -v mvn >/dev/null || { echo "Maven is required to fetch ElasticMQ"; exit 1; }
	mvn -q -B -f infra/elasticmq/pom.xml dependency:copy-dependencies -DoutputDirectory=$(CURDIR)/$(EMQ_LIB)
	@touch $@

# The local S3 (gofakes3, a Go module): a small binary of its own.
$(S3_BIN): infra/s3-local/main.go go.sum
	$(GO) build -o $@ ./infra/s3-local

$(SES_BIN): infra/ses-local/package.json infra/ses-local/package-lock.json
	@command -v npm >/dev/null || { echo "Node.js 20+ with npm is required for the SES emulator"; exit 1; }
	cd infra/ses-local && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(PY_STAMP): infra/requirements.txt
	@command -v python3 >/dev/null || { echo "Python 3 is required for the SAM CLI"; exit 1; }
	test -x $(VENV)/bin/pip || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r infra/requirements.txt
	@touch $@

## run: the API on http://127.0.0.1:$(PORT) with DynamoDB Local and the SES emulator
run: go-deps $(DDB_DEP) $(EMQ_JAR) $(S3_BIN) $(SES_BIN)
	$(GO) run ./infra/local run

## token: a local bearer token, e.g. make token USERNAME=alice ADMIN=1
token:
	@$(GO) run ./infra/local token $(if $(USERNAME),$(USERNAME),staff) $(if $(filter 1 true yes,$(ADMIN)),--admin,) $(if $(EMAIL),--email $(EMAIL),)

## invoke: run one function in process on a sample event (the demo course and user that the
## samples name are created first if missing), e.g.
##   make invoke FN=BulkEnrollFunction EVENT=events/BulkEnrollFunction.json
invoke: go-deps $(DDB_DEP) $(EMQ_JAR) $(S3_BIN) $(SES_BIN)
	@$(GO) run ./infra/local invoke $(FN) $(EVENT)

## test: unit + integration tests (DynamoDB Local, SES emulator), fuzz seeds, sam validate/build
test: deps lint deploy-check test-go schemathesis sam-validate sam-build smoke-local

## lint: gofmt, go vet and staticcheck (pinned by the tool directive in go.mod)
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.local/*')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

test-go: $(EMQ_JAR) $(S3_BIN)
	$(GO) run ./infra/local testenv -- $(GO) test -race -count=1 -timeout 45m ./...

sam-validate: $(PY_STAMP)
	$(SAM) validate --lint --template template.yaml

## deploy-check: what sam deploy sends (the SAM transform of template.yaml), linted with
## cfn-lint and checked for the deploy problems this project has met (infra/deploycheck);
## first it breaks the template in each of those ways to show that each is caught
deploy-check: $(PY_STAMP)
	@mkdir -p .aws-sam
	$(VENV)/bin/python infra/deploycheck/check.py --self-test template.yaml
	$(VENV)/bin/python infra/deploycheck/check.py template.yaml .aws-sam/deploy-check.json

sam-build: $(PY_STAMP)
	$(SAM) build --template template.yaml --build-dir .aws-sam/build --build-in-source
	@for f in .aws-sam/build/*Function/bootstrap; do \
	  printf '%-40s %9d bytes\n' "$$f" "$$(stat -c %s $$f)"; done

## build: all Lambda binaries into bin/<LogicalId>/bootstrap without SAM
build:
	@for d in functions/*/; do n=$$(basename $$d); \
	  $(MAKE) --no-print-directory ARTIFACTS_DIR=bin/$$n build-one FN_DIR=$$d; done

build-one:
	@mkdir -p $(ARTIFACTS_DIR)
	$(LAMBDA_BUILD) ./$(FN_DIR)

build-BulkEnrollFunction:
	$(LAMBDA_BUILD) ./functions/bulk-enroll
build-AdminFunction:
	$(LAMBDA_BUILD) ./functions/admin
build-ListEnrollmentsFunction:
	$(LAMBDA_BUILD) ./functions/list-enrollments
build-InvitationsFunction:
	$(LAMBDA_BUILD) ./functions/invitations
build-ExpireInvitationsFunction:
	$(LAMBDA_BUILD) ./functions/expire-invitations
build-MailerFunction:
	$(LAMBDA_BUILD) ./functions/mailer
build-MailSweepFunction:
	$(LAMBDA_BUILD) ./functions/mail-sweep
build-AuditFunction:
	$(LAMBDA_BUILD) ./functions/audit
build-JobsFunction:
	$(LAMBDA_BUILD) ./functions/jobs
build-JobWorkerFunction:
	$(LAMBDA_BUILD) ./functions/job-worker
build-UserApiFunction:
	$(LAMBDA_BUILD) ./functions/user-api

## bench: the budgets of docs/api.md#performance-budgets on its own DynamoDB Local: bulk enroll 1,000 / 10,000 / repeat and
## pages from a course of 100,000, each beside the plain SDK loop; writes bench/results.json
BENCH_ARGS ?=
bench: go-deps $(DDB_JAR) $(EMQ_JAR) $(S3_BIN)
	$(GO) run ./infra/bench $(BENCH_ARGS)

## fuzz: run every fuzz target for FUZZTIME each (their seed corpora also run in make test)
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$($(GO) list ./internal/...); do \
	  for fz in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$fz"; \
	    $(GO) test -run=NONE -fuzz="^$$fz\$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; \
	  done; done

clean:
	rm -rf .aws-sam bin

## reset-data: forget make run's local data (stop make run first)
reset-data:
	rm -rf .local/data

## smoke: the main user journey against a deployed stack, cleaning up after itself:
##   make smoke API=https://<id>.execute-api.<region>.amazonaws.com TOKEN=<staff JWT>
## smoke-local: the same journey against a throwaway local stack (part of make test)
smoke: go-deps
	@test -n "$(API)" -a -n "$(TOKEN)" || { echo "usage: make smoke API=<ApiUrl output> TOKEN=<staff bearer token>"; exit 2; }
	$(GO) run ./infra/smoke -api "$(API)" -token "$(TOKEN)"

smoke-local: go-deps $(DDB_DEP) $(SES_BIN)
	$(GO) run ./infra/smoke

## schemathesis: fuzz the local stack against openapi.yaml (fresh in-memory services on free
## ports; SCHEMATHESIS_ARGS go to infra/schemathesis/run.sh, e.g. "-max-examples 50 -seed 1")
.PHONY: schemathesis load
SCHEMATHESIS_ARGS ?=
schemathesis: deps
	GO=$(GO) infra/schemathesis/run.sh $(SCHEMATHESIS_ARGS)

## load: 50 clients for 30 s on a throwaway local stack (loopback only), mixing list requests
## and small overlapping bulk enrolls; p50/p90/p99 and errors per kind (LOAD_ARGS, e.g.
## "-clients 20 -duration 10s", or "-url http://127.0.0.1:3000" to target make run)
LOAD_ARGS ?=
load: go-deps $(DDB_DEP) $(SES_BIN)
	$(GO) run ./infra/load $(LOAD_ARGS)
