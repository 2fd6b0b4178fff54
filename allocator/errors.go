package allocator

import (
	"errors"
	"strings"
)

// More sentinels of the compute backend, classified once where the backend
// answers (allocator/nomad) so the gateway maps each to HTTP in one place.
var (
	// ErrDenied: the backend refused for lack of permission (an ACL token
	// without a capability). Retrying cannot help; an operator must grant it.
	ErrDenied = errors.New("compute backend denied the request")
	// ErrNoCapacity: the backend cannot place the session now (cpu, memory,
	// a quota exhausted on every eligible node). Retrying later may work.
	ErrNoCapacity = errors.New("no capacity for the session")
)

// BackendError is a refusal or an outage of the compute backend with what
// an operator needs to act on it. Kind is ErrUnavailable, ErrDenied or
// ErrNoCapacity; errors.Is sees both Kind and Err.
type BackendError struct {
	Kind error
	// Op is what Bay tried ("register job", "create volume bay-cargo-ws-1").
	Op string
	// Capability names the ACL capability a denied call needs
	// ("submit-job", `host_volume "bay-cargo-*": mount-readwrite`).
	Capability string
	// Resources names what is exhausted for ErrNoCapacity ("cpu", "memory").
	Resources []string
	// Err is the backend's own answer.
	Err error
}

func (e *BackendError) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	b.WriteString(": ")
	switch {
	case errors.Is(e.Kind, ErrDenied) && e.Capability != "":
		b.WriteString("permission denied (the token needs " + e.Capability + ")")
	case errors.Is(e.Kind, ErrNoCapacity) && len(e.Resources) > 0:
		b.WriteString("no capacity (exhausted: " + strings.Join(e.Resources, ", ") + ")")
	default:
		b.WriteString(e.Kind.Error())
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap lets errors.Is match the kind and the cause.
func (e *BackendError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// ErrRefused: the backend rejected the request as invalid (a job or
// volume it will not take as configured). Retrying the same request cannot
// help; the message says what the backend objected to.
var ErrRefused = errors.New("compute backend refused the request")
