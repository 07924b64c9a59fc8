// A CNI runtime built on libcni as Debian 12 ships it (golang-github-appc-cni-dev, libcni
// 1.1.2): the library containerd 1.6/1.7 and podman's CNI backend use. It reads a conflist
// as they do (top-level "cniVersion" only: no "cniVersions" before libcni 1.2) and runs one
// verb for one attachment, so tests can check netctl's conflists work with clients of that age.
//
// Usage: libcni-client ADD|CHECK|DEL CONFLIST CONTAINER_ID NETNS IFNAME
// Plugins are found on CNI_PATH; results are cached under CNI_CACHE_DIR. ADD prints the
// result as the client received it (JSON); an error prints "error: ..." and exits 1.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"
)

func main() {
	if len(os.Args) != 6 {
		fmt.Fprintln(os.Stderr, "usage: libcni-client ADD|CHECK|DEL CONFLIST CONTAINER_ID NETNS IFNAME")
		os.Exit(2)
	}
	verb, confPath := os.Args[1], os.Args[2]
	list, err := libcni.ConfListFromFile(confPath)
	if err != nil {
		fail(err)
	}
	cni := libcni.NewCNIConfigWithCacheDir(filepath.SplitList(os.Getenv("CNI_PATH")),
		os.Getenv("CNI_CACHE_DIR"), nil)
	rt := &libcni.RuntimeConf{ContainerID: os.Args[3], NetNS: os.Args[4], IfName: os.Args[5]}
	ctx := context.Background()
	switch verb {
	case "ADD":
		res, err := cni.AddNetworkList(ctx, list, rt)
		if err != nil {
			fail(err)
		}
		out, err := json.Marshal(res)
		if err != nil {
			fail(err)
		}
		fmt.Println(string(out))
	case "CHECK":
		err = cni.CheckNetworkList(ctx, list, rt)
	case "DEL":
		err = cni.DelNetworkList(ctx, list, rt)
	default:
		err = fmt.Errorf("unknown verb %q", verb)
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Println("error: " + err.Error())
	os.Exit(1)
}
