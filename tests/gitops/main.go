// Command gitops-check proves the GitOps health of captured AppStacks: it runs the Argo CD health
// check (deploy/gitops/health.lua) the way Argo CD runs a resource customization, and computes
// each object's kstatus with the library Flux and kpt use, then compares both with what each
// capture expects. Exit status 1 on any difference.
//
//	gitops-check -lua deploy/gitops/health.lua -argocd-cm deploy/gitops/argocd-cm.yaml DIR...
//
// Each DIR holds captures, one JSON file each (written by tests/gitops.rs):
//
//	{"case": "...", "expect": {"argocd": {"status": "...", "message": "..."}, "kstatus": "..."}, "object": {...}}
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	luajson "layeh.com/gopher-json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"
)

// The argocd-cm key Argo CD reads the AppStack health check from.
const configKey = "resource.customizations.health.appstack.dev_AppStack"

type health struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

type capture struct {
	Case   string `json:"case"`
	Expect struct {
		ArgoCD  health `json:"argocd"`
		Kstatus string `json:"kstatus"`
	} `json:"expect"`
	Object map[string]interface{} `json:"object"`
}

func main() {
	script := flag.String("lua", "deploy/gitops/health.lua", "the Argo CD health check")
	configMap := flag.String("argocd-cm", "deploy/gitops/argocd-cm.yaml", "the argocd-cm patch that must carry the same script")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: gitops-check [-lua FILE] [-argocd-cm FILE] DIR...")
		os.Exit(2)
	}
	if err := run(*script, *configMap, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "gitops-check:", err)
		os.Exit(1)
	}
}

func run(scriptPath, configMapPath string, dirs []string) error {
	source, err := os.ReadFile(scriptPath)
	if err != nil {
		return err
	}
	if err := sameScript(string(source), configMapPath); err != nil {
		return err
	}
	var files []string
	for _, dir := range dirs {
		found, err := filepath.Glob(filepath.Join(dir, "*.json"))
		if err != nil {
			return err
		}
		files = append(files, found...)
	}
	sort.Strings(files)
	if len(files) == 0 {
		return fmt.Errorf("no captures (*.json) in %s", strings.Join(dirs, " "))
	}
	table := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(table, "CASE\tPHASE\tARGO CD\tKSTATUS\tRESULT")
	failures := 0
	for _, file := range files {
		c, err := load(file)
		if err != nil {
			return err
		}
		obj := &unstructured.Unstructured{Object: c.Object}
		argo, err := argoHealth(obj, string(source))
		if err != nil {
			return fmt.Errorf("%s: the health check fails: %w", c.Case, err)
		}
		result, err := status.Compute(obj)
		if err != nil {
			return fmt.Errorf("%s: kstatus: %w", c.Case, err)
		}
		verdict := "ok"
		var problems []string
		if argo != c.Expect.ArgoCD {
			problems = append(problems, fmt.Sprintf("Argo CD %q (%s), want %q (%s)", argo.Status, argo.Message, c.Expect.ArgoCD.Status, c.Expect.ArgoCD.Message))
		}
		if string(result.Status) != c.Expect.Kstatus {
			problems = append(problems, fmt.Sprintf("kstatus %s (%s), want %s", result.Status, result.Message, c.Expect.Kstatus))
		}
		if len(problems) > 0 {
			failures++
			verdict = "FAIL: " + strings.Join(problems, "; ")
		}
		phase, _, _ := unstructured.NestedString(c.Object, "status", "phase")
		fmt.Fprintf(table, "%s\t%s\t%s\t%s\t%s\n", c.Case, phase, argo.Status, result.Status, verdict)
	}
	table.Flush()
	fmt.Printf("gitops-check: %d captures, %d failed\n", len(files), failures)
	if failures > 0 {
		return errors.New("some captures do not have the expected health")
	}
	return nil
}

func load(file string) (capture, error) {
	var c capture
	data, err := os.ReadFile(file)
	if err != nil {
		return c, err
	}
	// As the API machinery decodes objects (whole numbers as int64), the way both Argo CD and
	// kstatus see them.
	if err := utiljson.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("%s: %w", file, err)
	}
	if c.Case == "" || c.Object == nil || c.Expect.Kstatus == "" || c.Expect.ArgoCD.Status == "" {
		return c, fmt.Errorf("%s: a capture needs case, expect.argocd, expect.kstatus and object", file)
	}
	return c, nil
}

// sameScript fails unless the argocd-cm patch carries exactly the script.
func sameScript(script, configMapPath string) error {
	data, err := os.ReadFile(configMapPath)
	if err != nil {
		return err
	}
	var patch struct {
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(data, &patch); err != nil {
		return fmt.Errorf("%s: %w", configMapPath, err)
	}
	if patch.Data[configKey] != script {
		return fmt.Errorf("%s: data[%q] is not the health check's script verbatim", configMapPath, configKey)
	}
	return nil
}

// argoHealth runs the script as Argo CD runs a health customization from argocd-cm: gopher-lua
// with only the package, base and table libraries (no string, math or os: useOpenLibs is off
// for customizations), one second at most, the object as the global `obj` (JSON numbers as Lua
// numbers), the returned table read back through JSON, and an unknown status code reported as
// Unknown.
func argoHealth(obj *unstructured.Unstructured, script string) (health, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return health{}, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, obj.Object))
	if err := l.DoString(script); err != nil {
		return health{}, err
	}
	returned := l.Get(-1)
	if returned.Type() != lua.LTTable {
		return health{}, fmt.Errorf("the script returned a %s, not a table", returned.Type())
	}
	encoded, err := luajson.Encode(returned)
	if err != nil {
		return health{}, err
	}
	var hs health
	if err := json.Unmarshal(encoded, &hs); err != nil {
		return health{}, err
	}
	switch hs.Status {
	case "Unknown", "Progressing", "Suspended", "Healthy", "Degraded", "Missing":
		return hs, nil
	}
	return health{Status: "Unknown", Message: "Lua returned an invalid health status"}, nil
}

// toLua converts decoded JSON into Lua values: objects and arrays into tables, numbers into
// numbers.
func toLua(l *lua.LState, value interface{}) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case []interface{}:
		table := l.CreateTable(len(v), 0)
		for _, item := range v {
			table.Append(toLua(l, item))
		}
		return table
	case map[string]interface{}:
		table := l.CreateTable(0, len(v))
		for key, item := range v {
			table.RawSetH(lua.LString(key), toLua(l, item))
		}
		return table
	}
	return lua.LNil
}
