// Command etcd is the upstream etcd server, built from a pinned Go module
// (see go.mod) so the integration-test cluster needs no prebuilt binaries.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
