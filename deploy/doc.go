// Package deploy holds the container image (Dockerfile) and the Kubernetes
// manifests (k8s/base and the overlays in k8s/overlays) of recsys. It has no
// Go code to import: its test renders every overlay in process with the
// kustomize API (krusty) and checks what would be applied: the kinds, the
// probes, the shutdown timing, the security context and that every
// reference (ConfigMap, Secret, Service selector, HPA target) resolves. So
// `go test ./...` catches a broken manifest without a cluster or a network.
package deploy
