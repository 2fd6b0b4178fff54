package ship

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// EnvFile is where, relative to the workspace, Ship writes the profile's
// environment at start (as Shipyard Neo's Ship does), so scripts and login
// shells can `. /workspace/.bay_env.sh`.
const EnvFile = ".bay_env.sh"

// profileEnvVar lists the keys of the profile env (profiles.ProfileEnvVar;
// the runtimes import nothing of Bay).
const profileEnvVar = "BAY_PROFILE_ENV"

// shellQuote quotes v for a POSIX shell: single quotes, each ' as '\”.
func shellQuote(v string) string {
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}

// envFileContent renders `export K='V'` lines for the keys listed in
// profileEnvVar, in that order, skipping names a shell cannot export.
func envFileContent(env []string) string {
	vals := map[string]string{}
	var keys string
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vals[k] = v
		if k == profileEnvVar {
			keys = v
		}
	}
	var b strings.Builder
	b.WriteString("# Written by ship at start: the profile's environment.\n")
	for _, k := range strings.Split(keys, ",") {
		v, ok := vals[k]
		if !ok || !validEnvName(k) {
			continue
		}
		fmt.Fprintf(&b, "export %s=%s\n", k, shellQuote(v))
	}
	return b.String()
}

func validEnvName(k string) bool {
	if k == "" || (k[0] >= '0' && k[0] <= '9') {
		return false
	}
	for _, r := range k {
		if !(r == '_' || (r >= 'A' && r <= 'Z') || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9')) {
			return false
		}
	}
	return true
}

// writeEnvFile writes the file into the workspace root (replacing what an
// earlier session left), owned by the agent's user when there is one.
func (s *Server) writeEnvFile() error {
	p := filepath.Join(s.ws.real, EnvFile)
	tmp := p + ".tmp"
	// The agent owns the workspace: whatever sits at tmp (a symlink it
	// planted, say) goes first, and O_EXCL never follows or reuses one.
	_ = os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("write %s: %w", EnvFile, err)
	}
	_, werr := f.WriteString(envFileContent(os.Environ()))
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", EnvFile, werr)
	}
	if s.owner != nil {
		_ = os.Chown(tmp, s.owner.uid, s.owner.gid)
	}
	if err := os.Rename(tmp, p); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", EnvFile, err)
	}
	return nil
}
