# knit as a managed Docker plugin (included by the top Makefile). Every target talks to the engine DOCKER_HOST
# points at (the local one by default). PLUGIN names the plugin: `make plugin PLUGIN=registry.example/knit:0.2`.
PLUGIN ?= knit:latest

.PHONY: plugin plugin-enable plugin-disable plugin-push

## Builds the rootfs without any image registry (debootstrap, cached in plugin/build/cache), then replaces
## PLUGIN on the engine: docker plugin rm -f, docker plugin create. The new plugin is disabled.
plugin: build
	PLUGIN='$(PLUGIN)' bash plugin/build.sh

## Settings are changed while disabled, e.g. docker plugin set knit:latest KNIT_LOG_LEVEL=debug.
plugin-enable:
	docker plugin enable '$(PLUGIN)'

plugin-disable:
	docker plugin disable -f '$(PLUGIN)'

## Needs a name the registry accepts (REGISTRY/NAME:TAG) and a `docker login` to it.
plugin-push:
	docker plugin push '$(PLUGIN)'
