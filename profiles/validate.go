package profiles

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"

	"github.com/hashicorp/hcl/v2"
)

var (
	idPattern            = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	containerNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,30}$`)
	envNamePattern       = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// Drivers a container may name; "" means the gateway's configured default.
var knownDrivers = []string{"", "docker", "exec", "raw_exec"}

// problem is one broken rule. container is -1 for the profile itself; field
// is the HCL name of the offending setting ("" for the whole block).
type problem struct {
	container int
	field     string
	msg       string
}

func (pr problem) path(p *Profile) string {
	s := fmt.Sprintf("profile %q", p.ID)
	if pr.container >= 0 {
		s += fmt.Sprintf(": container %q", p.Containers[pr.container].Name)
	}
	if pr.field != "" {
		s += ": " + pr.field
	}
	return s
}

func (pr problem) error(p *Profile) error {
	return fmt.Errorf("%s: %s", pr.path(p), pr.msg)
}

func (pr problem) diagnostic(p *Profile, sp *spans) *hcl.Diagnostic {
	rng := sp.def
	if pr.container >= 0 && pr.container < len(sp.containers) {
		rng = sp.containers[pr.container].lookup(pr.field)
	} else if pr.container < 0 {
		rng = sp.lookup(pr.field)
	}
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Invalid profile",
		Detail:   pr.path(p) + ": " + pr.msg + ".",
		Subject:  &rng,
	}
}

// Validate checks every rule of one profile and returns all violations
// joined (nil when valid). Cross-profile rules (unique ids) are ValidateAll's.
func (p *Profile) Validate() error {
	var errs []error
	for _, pr := range p.problems() {
		errs = append(errs, pr.error(p))
	}
	return errors.Join(errs...)
}

// ValidateAll validates each profile and that ids are unique; all
// violations are joined.
func ValidateAll(ps []Profile) error {
	var errs []error
	seen := map[string]bool{}
	for i := range ps {
		if err := ps[i].Validate(); err != nil {
			errs = append(errs, err)
		}
		if seen[ps[i].ID] {
			errs = append(errs, fmt.Errorf("profile %q: defined more than once", ps[i].ID))
		}
		seen[ps[i].ID] = true
	}
	return errors.Join(errs...)
}

func (p *Profile) problems() []problem {
	var out []problem
	add := func(container int, field, format string, args ...any) {
		out = append(out, problem{container, field, fmt.Sprintf(format, args...)})
	}
	if !idPattern.MatchString(p.ID) {
		add(-1, "id", "must match %s", idPattern)
	}
	if p.IdleTimeout <= 0 {
		add(-1, "idle_timeout", "must be greater than 0, got %s", p.IdleTimeout)
	}
	if p.Network != NetworkDefault && p.Network != NetworkNone {
		add(-1, "network", "must be %q (no outbound network) or left out (outbound network), got %q", NetworkNone, p.Network)
	}
	if p.WarmPoolSize < 0 {
		add(-1, "warm_pool_size", "must be 0 or more, got %d", p.WarmPoolSize)
	}
	if p.WarmRotateTTL < 0 {
		add(-1, "warm_rotate_ttl", "must be 0 (never rotate) or more, got %s", p.WarmRotateTTL)
	}
	if p.Restart.Attempts < 0 {
		add(-1, "restart.attempts", "must be 0 or more, got %d", p.Restart.Attempts)
	}
	if p.Restart.Delay < 0 {
		add(-1, "restart.delay", "must be 0 or more, got %s", p.Restart.Delay)
	}
	for _, k := range sortedKeys(p.Env) {
		if !envNamePattern.MatchString(k) {
			add(-1, "env", "%q is not a valid environment variable name", k)
		}
	}
	if len(p.Containers) == 0 {
		add(-1, "", "needs at least one container (a container block, or the legacy image/runtime_type fields)")
	}

	names := map[string]int{}
	ports := map[int]int{}
	primaries := map[string]int{}
	for i := range p.Containers {
		c := &p.Containers[i]
		if !containerNamePattern.MatchString(c.Name) {
			add(i, "name", "must match %s", containerNamePattern)
		}
		if j, dup := names[c.Name]; dup {
			add(i, "name", "container %q is defined twice (containers %d and %d)", c.Name, j+1, i+1)
		} else {
			names[c.Name] = i
		}
		if !slices.Contains(knownDrivers, c.Driver) {
			add(i, "driver", "unknown driver %q (want docker, exec or raw_exec, or leave unset for the gateway's default)", c.Driver)
		}
		if c.Driver == "docker" && c.Image == "" {
			add(i, "image", "the docker driver needs an image")
		}
		if c.Image != "" && (c.Driver == "exec" || c.Driver == "raw_exec") {
			add(i, "image", "image is only used by the docker driver, not %s (use command)", c.Driver)
		}
		for _, k := range sortedKeys(c.Env) {
			if !envNamePattern.MatchString(k) {
				add(i, "env", "%q is not a valid environment variable name", k)
			}
		}
		// Without a known runtime type the defaults could not be filled in;
		// zero values then only echo the runtime_type error below.
		offers := RuntimeCapabilities(c.RuntimeType)
		known := offers != nil
		if c.Resources.CPU <= 0 && (known || c.Resources.CPU != 0) {
			add(i, "resources.cpu", "must be greater than 0 MHz, got %d", c.Resources.CPU)
		}
		if c.Resources.MemoryMB <= 0 && (known || c.Resources.MemoryMB != 0) {
			add(i, "resources.memory", "must be greater than 0 MB, got %d", c.Resources.MemoryMB)
		}
		switch j, dup := ports[c.RuntimePort]; {
		case !known && c.RuntimePort == 0:
		case c.RuntimePort < 1 || c.RuntimePort > 65535:
			add(i, "runtime_port", "must be 1..65535, got %d", c.RuntimePort)
		case dup:
			add(i, "runtime_port", "port %d is already used by container %q; containers of a session share one network namespace", c.RuntimePort, p.Containers[j].Name)
		default:
			ports[c.RuntimePort] = i
		}

		if !known {
			// Capability checks would only repeat this error.
			add(i, "runtime_type", "unknown runtime type %q (want %q or %q)", c.RuntimeType, RuntimeShip, RuntimeGull)
			continue
		}
		if len(c.Capabilities) == 0 {
			add(i, "capabilities", "must offer at least one capability")
		}
		for k, cap := range c.Capabilities {
			switch {
			case !KnownCapability(cap):
				add(i, "capabilities", "unknown capability %q (known: python, shell, filesystem, browser)", cap)
			case !slices.Contains(offers, cap):
				add(i, "capabilities", "a %s container cannot offer %q (it offers %v)", c.RuntimeType, cap, offers)
			case slices.Contains(c.Capabilities[:k], cap):
				add(i, "capabilities", "%q is listed twice", cap)
			}
		}
		for _, cap := range c.PrimaryFor {
			if !slices.Contains(c.Capabilities, cap) {
				add(i, "primary_for", "%q is not one of this container's capabilities %v", cap, c.Capabilities)
				continue
			}
			if j, dup := primaries[cap]; dup && j != i {
				add(i, "primary_for", "%q is already primary in container %q; a capability has at most one primary container", cap, p.Containers[j].Name)
				continue
			}
			primaries[cap] = i
		}
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
