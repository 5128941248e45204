# Every target delegates to a script under hack/.
.PHONY: all build unit integration e2e test verify bench demo image clean

all: build

build:
	hack/build.sh

unit:
	hack/unit.sh

integration:
	hack/integration.sh

e2e:
	hack/e2e.sh test

test:
	hack/test.sh

verify:
	hack/verify.sh

bench:
	hack/bench.sh

demo:
	hack/demo.sh

image:
	hack/image.sh

clean:
	rm -rf _output
