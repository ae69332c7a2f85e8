# Packaging and infrastructure-as-code checks for the three clouds.
#
#   make package    build each cloud's deployable artifact into dist/
#   make iac-check  serverless package (offline, no AWS credentials) + cfn-lint, checkov over
#                   serverless.yml / the generated CloudFormation / infra/aws (the forwarding
#                   stack) / infra/azure (Bicep) / infra/gcp (Terraform), terraform fmt -check,
#                   and the compile rules of tests/deploy/ for Bicep and Terraform
#
# The tools are installed on first use into project-local folders, so a fresh clone needs only
# python3, node/npm and terraform on PATH: checkov and cfn-lint pin many packages, so they live in
# their own virtual environment (.venv-iac/), and the Serverless Framework v3 in .tools/.

# An absolute path, because some recipes run it from inside the build folders.
DEPLOY_PYTHON ?= $(if $(wildcard .venv/bin/python),$(CURDIR)/.venv/bin/python,$(shell command -v python3))
IAC_VENV      ?= .venv-iac
IAC_PYTHON    ?= python3
TOOLS_DIR     ?= .tools
CHECKOV_VERSION  ?= 3.3.30
CFN_LINT_VERSION ?= 1.58.0
SERVERLESS_VERSION ?= 3.40.0
# A corral.toml to ship inside every artifact as corral.toml (then set the configPath parameter /
# config_path variable to corral.toml); empty ships none and the built-in defaults apply.
CORRAL_CONFIG_FILE ?=
# Compiled wheels (orjson, psycopg-binary, grpcio, cryptography ...) must match Lambda's runtime,
# not us. x86_64 (the default) runs python3.11 on Amazon Linux 2, glibc 2.26: only manylinux2014
# (glibc 2.17) wheels fit. LAMBDA_ARCH=arm64 builds for Graviton on python3.12 (Amazon Linux 2023,
# glibc 2.34), because psycopg-binary's aarch64 wheels need glibc 2.28; the stack then uses the
# matching runtime and Powertools layer. CI builds both but can import only the x86_64 one.
LAMBDA_ARCH ?= x86_64
ifeq ($(LAMBDA_ARCH),arm64)
LAMBDA_PYTHON ?= 3.12
LAMBDA_PLATFORMS ?= manylinux2014_aarch64 manylinux_2_28_aarch64
else
LAMBDA_PYTHON ?= 3.11
LAMBDA_PLATFORMS ?= manylinux2014_x86_64
endif

# Function code directories are read-only, so Python cannot cache bytecode there: without .pyc files
# in the artifact every cold start compiles every module again. unchecked-hash pycs stay valid
# whatever the files' timestamps become in the zip (a 3.11 interpreter must build them).
COMPILE    := $(DEPLOY_PYTHON) -m compileall -q -j 0 --invalidation-mode unchecked-hash

CHECKOV    := $(IAC_VENV)/bin/checkov
CFN_LINT   := $(IAC_VENV)/bin/cfn-lint
SLS        := $(TOOLS_DIR)/node_modules/.bin/serverless
SLS_STAGE  ?= dev
SLS_REGION ?= us-east-1
CFN_TEMPLATE := .serverless/cloudformation-template-update-stack.json

AWS_BUILD   := build/aws
AZURE_BUILD := dist/azure/corral-azure
GCP_BUILD   := build/gcp

# No AWS credentials are needed to package; make sure none from the caller's shell are used, and
# keep the Serverless Framework from phoning home.
SLS_ENV := env -u AWS_PROFILE AWS_ACCESS_KEY_ID= AWS_SECRET_ACCESS_KEY= AWS_SESSION_TOKEN= \
	SLS_TELEMETRY_DISABLED=1 SLS_NOTIFICATIONS_MODE=off SLS_DEPRECATION_DISABLE='*' SLS_INTERACTIVE_SETUP_DISABLE=1

.PHONY: package package-aws package-azure package-gcp lambda-deps iac-check iac-tools iac-aws iac-checkov iac-bicep iac-terraform clean-deploy

package: package-aws package-azure package-gcp

# --- tools --------------------------------------------------------------------------------------

$(CHECKOV) $(CFN_LINT):
	$(IAC_PYTHON) -m venv $(IAC_VENV)
	$(IAC_VENV)/bin/pip install --quiet --disable-pip-version-check \
		"checkov==$(CHECKOV_VERSION)" "cfn-lint==$(CFN_LINT_VERSION)"
	touch $(CHECKOV) $(CFN_LINT)

$(SLS):
	npm install --prefix $(TOOLS_DIR) --no-audit --no-fund --loglevel=error "serverless@$(SERVERLESS_VERSION)"

iac-tools: $(CHECKOV) $(CFN_LINT) $(SLS)

# --- AWS: one zip for every Lambda function (handler modules + corral + compiled deps) -------------

package-aws: dist/aws/corral-aws.zip $(SLS)
	$(SLS_ENV) $(SLS) package --stage $(SLS_STAGE) --region $(SLS_REGION) \
		--param="architecture=$(LAMBDA_ARCH)" --param="runtime=python$(LAMBDA_PYTHON)" \
		--param="powertoolsRuntime=python$(subst .,,$(LAMBDA_PYTHON))"
	@echo "dist/aws/corral-aws.zip ($(LAMBDA_ARCH)) and $(CFN_TEMPLATE) are ready"

LAMBDA_PIP = $(DEPLOY_PYTHON) -m pip install --quiet --disable-pip-version-check --no-compile \
	$(addprefix --platform ,$(LAMBDA_PLATFORMS)) --implementation cp --python-version $(LAMBDA_PYTHON) \
	--only-binary=:all: -c constraints.txt -r functions/aws/requirements.txt --target

# Only the Lambda dependencies, into LAMBDA_DEPS_DIR: how tests/deploy/ checks the arm64 build,
# which no interpreter here can import.
lambda-deps:
	@test -n "$(LAMBDA_DEPS_DIR)" || { echo "set LAMBDA_DEPS_DIR" >&2; exit 2; }
	$(LAMBDA_PIP) $(LAMBDA_DEPS_DIR)

# Lambda's limits: 50 MB zipped for a direct upload (the framework uploads through S3, where the
# limit is the unzipped one) and 250 MB unzipped for the function and all its layers together;
# the Powertools layer takes about 10 MB of that.
LAMBDA_UNZIPPED_LIMIT_MB ?= 240

# The architecture is part of the target, so switching LAMBDA_ARCH rebuilds.
dist/aws/.arch-$(LAMBDA_ARCH):
	mkdir -p dist/aws && rm -f dist/aws/.arch-* && touch $@

# So is the configuration: a stamp named by the SHA-256 of CORRAL_CONFIG_FILE's content ("none"
# without one), so naming a config, another one, an edited one or none rebuilds the zip, which
# otherwise kept what the previous build shipped (a stack whose configPath names a corral.toml the
# zip lacks fails every cold start).
ifneq ($(CORRAL_CONFIG_FILE),)
ifeq ($(wildcard $(CORRAL_CONFIG_FILE)),)
$(error CORRAL_CONFIG_FILE=$(CORRAL_CONFIG_FILE) does not exist)
endif
CORRAL_CONFIG_HASH := $(shell $(DEPLOY_PYTHON) -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' '$(CORRAL_CONFIG_FILE)')
else
CORRAL_CONFIG_HASH := none
endif
dist/aws/.config-$(CORRAL_CONFIG_HASH):
	mkdir -p dist/aws && rm -f dist/aws/.config-* && touch $@

dist/aws/corral-aws.zip: dist/aws/.arch-$(LAMBDA_ARCH) dist/aws/.config-$(CORRAL_CONFIG_HASH) functions/aws/requirements.txt constraints.txt $(shell find functions/aws shared/corral -type f -not -name '*.pyc' 2>/dev/null)
	rm -rf $(AWS_BUILD) && mkdir -p $(AWS_BUILD) dist/aws
	cp functions/aws/*.py functions/aws/requirements.txt $(AWS_BUILD)/
	cp -r shared/corral $(AWS_BUILD)/corral
	$(if $(CORRAL_CONFIG_FILE),cp $(CORRAL_CONFIG_FILE) $(AWS_BUILD)/corral.toml)
	# boto3 is in the Lambda runtime and Powertools (with the X-Ray SDK) comes from its public layer;
	# the rest, functions/aws/requirements.txt, is vendored as wheels for Lambda's platform.
	$(LAMBDA_PIP) $(AWS_BUILD)
	find $(AWS_BUILD) -name '__pycache__' -prune -exec rm -rf {} +
	$(COMPILE) $(AWS_BUILD)
	@size=$$(du -sm $(AWS_BUILD) | cut -f1); echo "Lambda code unzipped: $${size} MB (limit used here: $(LAMBDA_UNZIPPED_LIMIT_MB) MB)"; \
		test $$size -le $(LAMBDA_UNZIPPED_LIMIT_MB) || { echo "the Lambda artifact is too large" >&2; exit 1; }
	rm -f $@ && cd $(AWS_BUILD) && $(DEPLOY_PYTHON) -m zipfile -c $(abspath $@) .

# --- Azure: the folder `func azure functionapp publish` (or zip deploy with remote build) takes ------

package-azure:
	rm -rf $(AZURE_BUILD) dist/azure/corral-azure.zip && mkdir -p $(AZURE_BUILD)
	# requirements.txt names constraints.txt (-c), so the remote build resolves the transitive
	# dependencies to the versions the tests run with, not to whatever is newest that day.
	cp functions/azure/function_app.py functions/azure/host.json functions/azure/requirements.txt constraints.txt $(AZURE_BUILD)/
	cp -r shared/corral $(AZURE_BUILD)/corral
	$(if $(CORRAL_CONFIG_FILE),cp $(CORRAL_CONFIG_FILE) $(AZURE_BUILD)/corral.toml)
	find $(AZURE_BUILD) -name '__pycache__' -prune -exec rm -rf {} +
	$(COMPILE) $(AZURE_BUILD)
	cd $(AZURE_BUILD) && $(DEPLOY_PYTHON) -m zipfile -c ../corral-azure.zip .
	@echo "dist/azure/corral-azure/ and dist/azure/corral-azure.zip are ready"

# --- GCP: the source zip Cloud Functions (2nd gen) builds with requirements.txt -------------------

package-gcp:
	rm -rf $(GCP_BUILD) dist/gcp && mkdir -p $(GCP_BUILD) dist/gcp
	# As for Azure: Cloud Build installs requirements.txt with the constraints.txt beside it.
	cp functions/gcp/main.py functions/gcp/requirements.txt constraints.txt $(GCP_BUILD)/
	cp -r shared/corral $(GCP_BUILD)/corral
	$(if $(CORRAL_CONFIG_FILE),cp $(CORRAL_CONFIG_FILE) $(GCP_BUILD)/corral.toml)
	find $(GCP_BUILD) -name '__pycache__' -prune -exec rm -rf {} +
	$(COMPILE) $(GCP_BUILD)
	cd $(GCP_BUILD) && $(DEPLOY_PYTHON) -m zipfile -c $(abspath dist/gcp/corral-gcp.zip) .
	@echo "dist/gcp/corral-gcp.zip is ready"

# --- checks ---------------------------------------------------------------------------------------

iac-check: iac-aws iac-checkov iac-bicep iac-terraform
	@echo "iac-check: all checks passed"

iac-aws: package-aws $(CFN_LINT)
	# W3005 (DependsOn beside a GetAtt) is in what the framework generates, not in our resources.
	$(CFN_LINT) --ignore-checks W3005 -- $(CFN_TEMPLATE)
	$(CFN_LINT) -- infra/aws/*.yml

# --soft-fail is never used: a failed check fails the target, and every skip is justified inline in
# the IaC file. Parsing errors do not fail checkov by itself, so each JSON report is inspected too.
CHECKOV_RUN = $(CHECKOV) --quiet --compact --skip-download --output cli --output json
iac-checkov: package-aws $(CHECKOV)
	rm -rf build/checkov && mkdir -p build/checkov
	$(CHECKOV_RUN) --output-file-path console,build/checkov/serverless --framework serverless -f serverless.yml
	$(CHECKOV_RUN) --output-file-path console,build/checkov/cloudformation --framework cloudformation -f $(CFN_TEMPLATE)
	$(CHECKOV_RUN) --output-file-path console,build/checkov/aws --framework cloudformation -d infra/aws
	$(CHECKOV_RUN) --output-file-path console,build/checkov/bicep --framework bicep -d infra/azure
	$(CHECKOV_RUN) --output-file-path console,build/checkov/terraform --framework terraform -d infra/gcp
	$(DEPLOY_PYTHON) infra/check_parse.py build/checkov

# No Bicep compiler in CI: the rules it would enforce are checked on checkov's parse of the files,
# and `bicep build` (or `az bicep build`) runs too wherever one is installed.
iac-bicep: $(CHECKOV)
	$(IAC_VENV)/bin/python infra/check_bicep.py infra/azure

iac-terraform:
	terraform fmt -check -recursive -diff infra/gcp

clean-deploy:
	rm -rf build/aws build/gcp build/checkov dist/aws dist/azure dist/gcp .serverless
