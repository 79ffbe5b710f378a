// Package deploy holds no code: it is the home of the container image
// definition (Containerfile) and the Kubernetes manifests (kubernetes/),
// and of the tests that check them (deploy_test.go): the Containerfile's
// build command makes a static binary, and the manifests are valid
// Kubernetes objects that fit mailkeep and each other.
package deploy
