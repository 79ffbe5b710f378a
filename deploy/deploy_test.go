package deploy

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mailkeep/mailkeep/internal/config"
	"go.yaml.in/yaml/v2"
)

// instruction is one Containerfile instruction, continuation lines joined.
type instruction struct {
	cmd, args string
	line      int
}

func readContainerfile(t *testing.T) []instruction {
	t.Helper()
	f, err := os.Open("Containerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []instruction
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (l == "" || strings.HasPrefix(l, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if s, ok := strings.CutSuffix(l, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(l)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args), start})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// shellWords splits a command line as a POSIX shell would for the simple
// words a build command has: blanks separate, quotes group, no expansion.
func shellWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				w.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case strings.ContainsRune("$`|&;<>(){}*?\\", r):
			return nil, fmt.Errorf("%q: %q needs a shell; keep the build command plain", s, r)
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("%q: unterminated quote", s)
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

// TestContainerfile checks the image definition: a build stage whose
// "go build" runs here (CGO_ENABLED=0) and makes a static binary that
// runs, with the Go version go.mod asks for; a final stage from scratch
// that needs no shell (no RUN, exec-form ENTRYPOINT), runs as a non-root
// user and keeps archives on a volume.
func TestContainerfile(t *testing.T) {
	ins := readContainerfile(t)
	var stages [][]instruction
	for _, in := range ins {
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			t.Fatalf("Containerfile:%d: %s before the first FROM", in.line, in.cmd)
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], in)
	}
	if len(stages) < 2 {
		t.Fatalf("want a multi-stage build, got %d stage(s)", len(stages))
	}

	// The build stage's Go is the one go.mod names (go 1.26.8: golang:1.26).
	from := strings.Fields(stages[0][0].args)[0]
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if m == nil || !strings.Contains(from, "golang:"+string(m[1])) {
		t.Errorf("build stage FROM %s: want golang:%s (go.mod)", from, m[1])
	}

	// The build command, run as the Containerfile has it, into a temporary
	// directory instead of /out.
	var build []string
	for _, in := range stages[0] {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			if build != nil {
				t.Fatalf("Containerfile:%d: a second go build", in.line)
			}
			if build, err = shellWords(in.args); err != nil {
				t.Fatalf("Containerfile:%d: %v", in.line, err)
			}
		}
	}
	var env []string
	for len(build) > 0 && strings.Contains(build[0], "=") {
		env, build = append(env, build[0]), build[1:]
	}
	if !slices.Contains(env, "CGO_ENABLED=0") {
		t.Errorf("build command sets %v: want CGO_ENABLED=0", env)
	}
	if len(build) < 3 || build[0] != "go" || build[1] != "build" || build[len(build)-1] != "./cmd/mailkeep" {
		t.Fatalf("build command %q: want go build ... ./cmd/mailkeep", build)
	}
	bin := filepath.Join(t.TempDir(), "mailkeep")
	i := slices.Index(build, "-o")
	if i < 0 || i+1 >= len(build) {
		t.Fatalf("build command %q: no -o", build)
	}
	build[i+1] = bin
	cmd := exec.Command(build[0], build[1:]...)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", build, err, out)
	}
	checkStatic(t, bin)
	out, err := exec.Command(bin, "help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Usage:") || !strings.Contains(string(out), "  backup ") {
		t.Errorf("%s help: %v\n%s", bin, err, out)
	}

	// The final stage.
	final := stages[len(stages)-1]
	if f := strings.Fields(final[0].args); f[0] != "scratch" {
		t.Errorf("final stage FROM %s: want scratch (no shell, nothing but the binary)", f[0])
	}
	var user, entry, volume string
	for _, in := range final {
		switch in.cmd {
		case "RUN":
			t.Errorf("Containerfile:%d: RUN in the final stage needs a shell", in.line)
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entry = in.args
		case "VOLUME":
			volume = in.args
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("USER %q: want a numeric, non-root user (runAsNonRoot needs a number)", user)
	}
	var argv []string
	if err := json.Unmarshal([]byte(entry), &argv); err != nil || len(argv) == 0 || !strings.HasSuffix(argv[0], "/mailkeep") {
		t.Errorf("ENTRYPOINT %s: want the exec form [\"/.../mailkeep\"] (the shell form needs /bin/sh)", entry)
	}
	var vols []string
	if err := json.Unmarshal([]byte(volume), &vols); err != nil || !slices.Contains(vols, "/archive") {
		t.Errorf("VOLUME %s: want [\"/archive\"]", volume)
	}
}

// checkStatic fails unless path is an ELF executable with no program
// interpreter and no dynamic section: nothing to load at run time, so it
// runs on an empty (scratch) image.
func checkStatic(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s: has a %v program header: not static", path, p.Type)
		}
	}
	for _, name := range []string{".interp", ".dynamic"} {
		if f.Section(name) != nil {
			t.Errorf("%s: has a %s section: not static", path, name)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s: needs %v", path, libs)
	}
}

// object is one Kubernetes object, as much of it as the tests read.
type object struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name      string `yaml:"name"`
		Namespace string `yaml:"namespace"`
	} `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Spec       struct {
		Schedule  string `yaml:"schedule"`
		Resources struct {
			Requests map[string]string `yaml:"requests"`
		} `yaml:"resources"` // a PersistentVolumeClaim's
		JobTemplate struct {
			Spec struct {
				Template struct {
					Spec podSpec `yaml:"spec"`
				} `yaml:"template"`
			} `yaml:"spec"`
		} `yaml:"jobTemplate"`
	} `yaml:"spec"`
	file string
}

type podSpec struct {
	RestartPolicy string `yaml:"restartPolicy"`
	Containers    []struct {
		Name    string   `yaml:"name"`
		Image   string   `yaml:"image"`
		Args    []string `yaml:"args"`
		EnvFrom []struct {
			SecretRef struct {
				Name string `yaml:"name"`
			} `yaml:"secretRef"`
		} `yaml:"envFrom"`
		Resources struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
		} `yaml:"volumeMounts"`
	} `yaml:"containers"`
	Volumes []struct {
		Name      string `yaml:"name"`
		ConfigMap struct {
			Name string `yaml:"name"`
		} `yaml:"configMap"`
		PersistentVolumeClaim struct {
			ClaimName string `yaml:"claimName"`
		} `yaml:"persistentVolumeClaim"`
	} `yaml:"volumes"`
}

func readManifests(t *testing.T) []object {
	t.Helper()
	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	var out []object
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var o object
			if err := dec.Decode(&o); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			o.file = f
			out = append(out, o)
		}
	}
	return out
}

// quantity is the form of a Kubernetes resource quantity (100Gi, 500m,
// 1.5G); the schemas leave it a free string.
var quantity = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$`)

// TestManifestsFit checks what no schema knows: the CronJobs' --shard K/N
// cover shards 1..N once each, every object they name exists, the
// ConfigMap's config.toml is a valid mailkeep configuration whose every
// password_env is a key of the Secret, the flags are backup's, and the
// archive volume is where archive_root points. It also checks the fields
// that the API server's own validation requires and the OpenAPI schemas
// do not (kubectl-validate passes a container without a name, a
// restartPolicy of "Sometimes", a memory limit of "lots").
func TestManifestsFit(t *testing.T) {
	objs := readManifests(t)
	for _, o := range objs {
		if o.Kind == "PersistentVolumeClaim" && !quantity.MatchString(o.Spec.Resources.Requests["storage"]) {
			t.Errorf("%s: storage request %q is no quantity", o.file, o.Spec.Resources.Requests["storage"])
		}
	}
	byKind := map[string]map[string]object{}
	for _, o := range objs {
		if o.Metadata.Namespace != "mailkeep" && o.Kind != "Namespace" {
			t.Errorf("%s: %s %s in namespace %q, want mailkeep", o.file, o.Kind, o.Metadata.Name, o.Metadata.Namespace)
		}
		if byKind[o.Kind] == nil {
			byKind[o.Kind] = map[string]object{}
		}
		byKind[o.Kind][o.Metadata.Name] = o
	}

	shardN, seen := 0, map[int]string{}
	claims := map[string]bool{}
	for name, cj := range byKind["CronJob"] {
		ps := cj.Spec.JobTemplate.Spec.Template.Spec
		if len(ps.Containers) != 1 {
			t.Fatalf("%s: %d containers", name, len(ps.Containers))
		}
		c := ps.Containers[0]
		vols := map[string]int{}
		for i, v := range ps.Volumes {
			vols[v.Name] = i
		}
		var cfgFile string
		for _, a := range c.Args {
			if v, ok := strings.CutPrefix(a, "--shard="); ok {
				var k, n int
				if _, err := fmt.Sscanf(v, "%d/%d", &k, &n); err != nil || k < 1 || k > n {
					t.Errorf("%s: --shard=%s", name, v)
				}
				if shardN != 0 && n != shardN {
					t.Errorf("%s: --shard=%s, other CronJobs have N=%d", name, v, shardN)
				}
				if prev, dup := seen[k]; dup {
					t.Errorf("%s and %s are both shard %d", prev, name, k)
				}
				shardN, seen[k] = n, name
			}
			if v, ok := strings.CutPrefix(a, "--config="); ok {
				cfgFile = v
			}
		}
		for _, e := range c.EnvFrom {
			if _, ok := byKind["Secret"][e.SecretRef.Name]; !ok {
				t.Errorf("%s: envFrom Secret %q is not in the manifests", name, e.SecretRef.Name)
			}
		}
		var archiveMount string
		for _, m := range c.VolumeMounts {
			i, ok := vols[m.Name]
			if !ok {
				t.Errorf("%s: volumeMount %q has no volume", name, m.Name)
				continue
			}
			v := ps.Volumes[i]
			if cm := v.ConfigMap.Name; cm != "" {
				o, ok := byKind["ConfigMap"][cm]
				if !ok {
					t.Errorf("%s: ConfigMap %q is not in the manifests", name, cm)
				} else if want := filepath.Join(m.MountPath, "config.toml"); cfgFile != want || o.Data["config.toml"] == "" {
					t.Errorf("%s: --config=%s; the ConfigMap %s is mounted at %s", name, cfgFile, cm, m.MountPath)
				}
			}
			if pvc := v.PersistentVolumeClaim.ClaimName; pvc != "" {
				if _, ok := byKind["PersistentVolumeClaim"][pvc]; !ok {
					t.Errorf("%s: PersistentVolumeClaim %q is not in the manifests", name, pvc)
				}
				if claims[pvc] {
					t.Errorf("%s: PersistentVolumeClaim %q is another shard's", name, pvc)
				}
				claims[pvc], archiveMount = true, m.MountPath
			}
		}
		for _, cm := range byKind["ConfigMap"] {
			cfg, err := config.Parse("/etc/mailkeep/config.toml", []byte(cm.Data["config.toml"]))
			if err != nil {
				t.Fatalf("%s: config.toml: %v", cm.file, err)
			}
			if cfg.ArchiveRoot != archiveMount {
				t.Errorf("%s: archive_root %q, but %s mounts its volume at %q", cm.file, cfg.ArchiveRoot, name, archiveMount)
			}
			for _, a := range cfg.Accounts {
				if _, ok := byKind["Secret"]["mailkeep-passwords"].StringData[a.PasswordEnv]; a.PasswordEnv == "" || !ok {
					t.Errorf("%s: account %s: password_env %q is not a key of the Secret", cm.file, a.Name, a.PasswordEnv)
				}
			}
		}
		if f := strings.Fields(cj.Spec.Schedule); len(f) != 5 {
			t.Errorf("%s: schedule %q: want five cron fields", name, cj.Spec.Schedule)
		}
		if ps.RestartPolicy != "Never" && ps.RestartPolicy != "OnFailure" {
			t.Errorf("%s: restartPolicy %q: a Job's is Never or OnFailure", name, ps.RestartPolicy)
		}
		if c.Name == "" || c.Image == "" {
			t.Errorf("%s: container name %q, image %q: both are required", name, c.Name, c.Image)
		}
		for _, q := range []string{c.Resources.Requests["cpu"], c.Resources.Requests["memory"], c.Resources.Limits["memory"]} {
			if !quantity.MatchString(q) {
				t.Errorf("%s: resources %+v: want cpu and memory requests and a memory limit, as quantities", name, c.Resources)
			}
		}
	}
	if shardN == 0 || len(seen) != shardN {
		t.Errorf("CronJobs cover shards %v of %d: want one CronJob for each of 1..N", seen, shardN)
	}

	// Every flag the CronJobs pass is one of backup's.
	bin := filepath.Join(t.TempDir(), "mailkeep")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/mailkeep").CombinedOutput(); err != nil {
		t.Fatalf("building mailkeep: %v\n%s", err, out)
	}
	help, _ := exec.Command(bin, "backup", "-h").CombinedOutput()
	for _, cj := range byKind["CronJob"] {
		for _, a := range cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0].Args[1:] {
			flag, _, _ := strings.Cut(a, "=")
			name := strings.TrimLeft(flag, "-")
			if !regexp.MustCompile(`(?m)^\s*--?` + regexp.QuoteMeta(name) + `\b`).Match(help) {
				t.Errorf("%s: %s is not a flag of mailkeep backup:\n%s", cj.file, flag, help)
			}
		}
	}
}

// kubectlValidate is the schema checker that scripts/install-test-deps
// builds (version pinned in tools/kubectl-validate/go.mod). It carries the
// Kubernetes API's own OpenAPI schemas, so it works without a cluster or
// a network.
func kubectlValidate(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs("../.tools/bin/kubectl-validate")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s: %v (scripts/install-test-deps builds it)", p, err)
		}
		t.Skipf("%s: %v (run scripts/install-test-deps)", p, err)
	}
	return p
}

// kubernetesVersion is the API version the manifests are checked against:
// the newest whose schemas the pinned kubectl-validate carries.
const kubernetesVersion = "1.30"

func validate(t *testing.T, tool string, paths ...string) (string, error) {
	t.Helper()
	// No kubeconfig: the schemas come from the tool, never from a cluster.
	home := t.TempDir()
	kc := filepath.Join(home, "kubeconfig")
	os.WriteFile(kc, nil, 0o600)
	cmd := exec.Command(tool, append([]string{"--version", kubernetesVersion}, paths...)...)
	cmd.Env = append(os.Environ(), "HOME="+home, "KUBECONFIG="+kc)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestManifestsSchema validates every manifest against the Kubernetes API
// schemas (unknown fields, types, required fields), and shows that the
// checker rejects a broken CronJob.
func TestManifestsSchema(t *testing.T) {
	tool := kubectlValidate(t)
	files, _ := filepath.Glob("kubernetes/*.yaml")
	out, err := validate(t, tool, files...)
	if err != nil {
		t.Errorf("kubectl-validate: %v\n%s", err, out)
	}
	for _, f := range files {
		if !strings.Contains(out, f) {
			t.Errorf("kubectl-validate did not report on %s:\n%s", f, out)
		}
	}
	for file, want := range map[string]string{
		"testdata/invalid/unknown-field.yaml": "spec.shedule",
		"testdata/invalid/wrong-type.yaml":    "spec.jobTemplate.spec.backoffLimit",
	} {
		out, err = validate(t, tool, file)
		if err == nil || !strings.Contains(out, want) {
			t.Errorf("kubectl-validate accepted %s (%v), or did not name %s:\n%s", file, err, want, out)
		}
	}
}
