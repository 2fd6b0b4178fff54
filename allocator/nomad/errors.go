package nomad

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/hashicorp/nomad/api"

	"github.com/bay-sandbox/bay/allocator"
)

// op is one kind of call Bay makes to Nomad and the ACL capability it needs,
// so a "Permission denied" names what the token lacks.
type op struct {
	verb       string
	capability string
}

// The calls Bay makes. examples/acl/bay-policy.hcl grants exactly these.
var (
	opListJobs      = op{"list jobs", `namespace capability "list-jobs"`}
	opReadJob       = op{"read job", `namespace capability "read-job"`}
	opReadAllocs    = op{"read allocations of", `namespace capability "read-job"`}
	opReadEval      = op{"read evaluation", `namespace capability "read-job"`}
	opRegisterJob   = op{"register job", `namespace capability "submit-job" and host_volume "bay-cargo-*" capability "mount-readwrite"`}
	opStopJob       = op{"stop job", `namespace capability "submit-job"`}
	opPurgeJob      = op{"purge job", `namespace capability "submit-job"`}
	opListVolumes   = op{"list volumes", `namespace capability "host-volume-read"`}
	opReadVolume    = op{"read volume", `namespace capability "host-volume-read"`}
	opCreateVolume  = op{"create volume", `namespace capability "host-volume-create"`}
	opDeleteVolume  = op{"delete volume", `namespace capability "host-volume-delete"`}
	opEventStream   = op{"follow event stream", `namespace capability "read-job"`}
	opReadServices  = op{"read services", `namespace capability "read-job"`}
	opRegisterProbe = op{"register a probe job", `namespace capability "submit-job" and host_volume "bay-cargo-*" capability "mount-readwrite"`}
)

// nomadErr wraps a Nomad API error once with the action and classifies it
// (allocator.BackendError) so the gateway maps it to HTTP in one place:
//
//   - 403 (Permission denied, ACL token not found): ErrDenied naming the
//     capability, never retried;
//   - not reaching Nomad, 5xx ("No path to node", an RPC to a restarting
//     server), 429: ErrUnavailable, worth a retry;
//   - any other 4xx: ErrRefused (a job or volume Nomad will not take).
//
// A cancelled or expired ctx is returned as such: the caller gave up.
func nomadErr(o op, target string, err error) error {
	action := o.verb
	if target != "" {
		action += " " + target
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", action, err)
	}
	var ure api.UnexpectedResponseError
	if !errors.As(err, &ure) {
		return &allocator.BackendError{Kind: ErrUnreachable, Op: action, Err: err}
	}
	body := strings.TrimSpace(ure.Body())
	cause := fmt.Errorf("nomad answered %d: %s", ure.StatusCode(), body)
	lower := strings.ToLower(body)
	switch code := ure.StatusCode(); {
	case code == http.StatusForbidden || strings.Contains(lower, "permission denied"):
		return &allocator.BackendError{Kind: allocator.ErrDenied, Op: action, Capability: o.capability, Err: cause}
	case code == http.StatusTooManyRequests || code == http.StatusRequestTimeout || code > 500:
		return &allocator.BackendError{Kind: allocator.ErrUnavailable, Op: action, Err: cause}
	case code == http.StatusInternalServerError && strings.Contains(lower, "could not place volume"):
		return &allocator.BackendError{Kind: allocator.ErrNoCapacity, Op: action,
			Resources: []string{"nodes with the volume plugin"}, Err: cause}
	case code == http.StatusInternalServerError && transient(lower):
		return &allocator.BackendError{Kind: allocator.ErrUnavailable, Op: action, Err: cause}
	default:
		// Nomad answers most validation failures with a plain 500 too: only
		// the known signs of an outage are worth a retry.
		return &allocator.BackendError{Kind: allocator.ErrRefused, Op: action, Err: cause}
	}
}

// transientSigns are the messages of a Nomad 500 that come from an outage
// (a server without a leader, a client not connected yet after a restart,
// an RPC cut), not from the request.
var transientSigns = []string{
	"no path to node", "unknown node", "no cluster leader", "leadership lost", "not the leader",
	"rpc error", "i/o timeout", "connection refused", "connection reset", "eof", "timeout",
	"no servers", "raft", "stream closed", "broken pipe",
}

func transient(lower string) bool {
	for _, s := range transientSigns {
		if strings.Contains(lower, s) {
			return true
		}
	}
	return false
}

// isBackendErr says whether err is already classified.
func isBackendErr(err error) bool {
	var be *allocator.BackendError
	return errors.As(err, &be)
}

// isDenied says whether err is Nomad refusing for lack of permission.
func isDenied(err error) bool { return errors.Is(err, allocator.ErrDenied) }

// retryable says whether trying the same call again later may succeed.
func retryable(err error) bool {
	return errors.Is(err, allocator.ErrUnavailable) && !errors.Is(err, allocator.ErrDenied)
}

// discoveryErr classifies a failed endpoint lookup: Nomad's own answers as
// nomadErr does, anything else (Consul unreachable or refusing) as the
// backend being unavailable, so a lookup never surfaces as a bare 500.
func discoveryErr(target string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("resolve %s: %w", target, err)
	}
	var ure api.UnexpectedResponseError
	if errors.As(err, &ure) {
		return nomadErr(opReadServices, "for "+target, err)
	}
	return &allocator.BackendError{Kind: allocator.ErrUnavailable, Op: "resolve " + target, Err: err}
}
