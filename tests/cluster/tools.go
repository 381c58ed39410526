//go:build tools

// Keeps kube-apiserver's package in the module graph so `go build` can name it.
package testcluster

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
