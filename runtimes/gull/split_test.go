package gull

import (
	"errors"
	"reflect"
	"testing"
)

func TestSplitWords(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  error
	}{
		{in: "open https://example.com", want: []string{"open", "https://example.com"}},
		{in: "  get   title \t", want: []string{"get", "title"}},
		{in: `fill @e1 "hello world"`, want: []string{"fill", "@e1", "hello world"}},
		{in: `fill @e1 'it''s'`, want: []string{"fill", "@e1", "its"}},
		{in: `fill @e1 "it's"`, want: []string{"fill", "@e1", "it's"}},
		{in: `fill @e1 'say "hi"'`, want: []string{"fill", "@e1", `say "hi"`}},
		{in: `click #submit`, want: []string{"click", "#submit"}},
		{in: `eval "a && b; c | d"`, want: []string{"eval", "a && b; c | d"}},
		{in: `eval a&&b`, want: []string{"eval", "a&&b"}},
		{in: `fill @e1 ""`, want: []string{"fill", "@e1", ""}},
		{in: `fill @e1 ''`, want: []string{"fill", "@e1", ""}},
		{in: `fill @e1 a""b`, want: []string{"fill", "@e1", "ab"}},
		{in: `fill @e1 hello\ world`, want: []string{"fill", "@e1", "hello world"}},
		{in: `fill @e1 \"x\"`, want: []string{"fill", "@e1", `"x"`}},
		{in: `eval "say \"hi\" \\ \$HOME \x"`, want: []string{"eval", `say "hi" \ $HOME \x`}},
		{in: `eval '\n stays'`, want: []string{"eval", `\n stays`}},
		{in: `eval $HOME`, want: []string{"eval", "$HOME"}},
		{in: "get \\\ntitle", want: []string{"get", "title"}},
		{in: "eval \"a\\\nb\"", want: []string{"eval", "ab"}},
		{in: "type @e1 \"two\nlines\"", want: []string{"type", "@e1", "two\nlines"}},
		{in: `fill @e1 "héllo wörld ✓"`, want: []string{"fill", "@e1", "héllo wörld ✓"}},
		{in: "", want: nil},
		{in: "   ", want: nil},
		{in: `fill @e1 "hello`, err: ErrUnbalancedQuote},
		{in: `fill @e1 'hello`, err: ErrUnbalancedQuote},
		{in: `fill @e1 "a\"`, err: ErrUnbalancedQuote},
		{in: `get title \`, err: ErrTrailingEscape},
	}
	for _, tt := range tests {
		got, err := SplitWords(tt.in)
		if !errors.Is(err, tt.err) {
			t.Errorf("SplitWords(%q) error = %v, want %v", tt.in, err, tt.err)
			continue
		}
		if tt.err == nil && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("SplitWords(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCLIArgs(t *testing.T) {
	got := cliArgs("sandbox-abc", "/ws/.browser/profile", []string{"get", "title"})
	want := []string{"--session", "sandbox-abc", "--profile", "/ws/.browser/profile", "get", "title"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("cliArgs = %q, want %q", got, want)
	}
	got = cliArgs("s", "/p", []string{"agent-browser", "snapshot", "-i"})
	want = []string{"--session", "s", "--profile", "/p", "snapshot", "-i"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("cliArgs with program name = %q, want %q", got, want)
	}
}

func TestChildEnvKeepsOperatorValues(t *testing.T) {
	env := childEnv([]string{"HOME=/home/u", "AGENT_BROWSER_ARGS=--custom", "AGENT_BROWSER_SCREENSHOT_DIR="}, "/ws")
	check := func(k, want string) {
		t.Helper()
		if v, _ := lookupEnv(env, k); v != want {
			t.Errorf("%s = %q, want %q", k, v, want)
		}
	}
	check("AGENT_BROWSER_ARGS", "--custom")      // set by the operator: kept
	check("AGENT_BROWSER_SCREENSHOT_DIR", "/ws") // empty counts as unset
	check("AGENT_BROWSER_DOWNLOAD_PATH", "/ws")  // default
	check("AGENT_BROWSER_SOCKET_DIR", "/home/u/.agent-browser")

	env = childEnv([]string{"XDG_RUNTIME_DIR=/run/user/1", "HOME=/h"}, "/ws")
	check("AGENT_BROWSER_SOCKET_DIR", "/run/user/1/agent-browser")
	env = childEnv([]string{"AGENT_BROWSER_SOCKET_DIR=/s", "XDG_RUNTIME_DIR=/run/user/1"}, "/ws")
	check("AGENT_BROWSER_SOCKET_DIR", "/s")
	if got := daemonRunDir([]string{"AGENT_BROWSER_SOCKET_DIR=/s", "AGENT_BROWSER_NAMESPACE=team a"}); got != "/s/namespaces/team_a/run" {
		t.Errorf("daemonRunDir with namespace = %q", got)
	}
}

func TestValidSession(t *testing.T) {
	for name, want := range map[string]bool{
		"default": true, "sandbox-0123456789ab": true, "café_東京-7": true,
		"": false, "my session": false, "a/b": false, "../x": false,
	} {
		if got := validSession(name); got != want {
			t.Errorf("validSession(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestLimitedBuffer(t *testing.T) {
	b := &limitedBuffer{max: 5}
	for _, s := range []string{"abc", "defg", "hij"} {
		if n, err := b.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if got := b.String(); got != "abcde\n[gull: output truncated, 5 bytes dropped]" {
		t.Fatalf("String() = %q", got)
	}
}
