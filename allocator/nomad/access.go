package nomad

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/nomad/api"

	"github.com/bay-sandbox/bay/jobspecs"
)

// Missing is one thing the gateway's token may not do.
type Missing struct {
	// Capability is the ACL capability ("namespace capability \"submit-job\"").
	Capability string
	// Impact says what of Bay fails without it.
	Impact string
	// Err is Nomad's answer to the probe.
	Err error
}

// probeID names the objects the access check asks about; none exist.
const probeID = "access-check"

// noVolume is a well-formed volume id no volume has.
const noVolume = "00000000-0000-0000-0000-000000000000"

// CheckAccess asks Nomad, with the gateway's token, for every capability
// Bay needs (examples/acl/bay-policy.hcl) and returns the ones it lacks. It
// probes rather than parsing policies: each probe is a call that needs one
// capability and changes nothing (reads of objects that do not exist, a
// volume create Nomad rejects as invalid once the ACL check passed, and a
// parameterized job, which Nomad never schedules, registered and purged at
// once). With ACLs disabled nothing is missing. A Nomad that cannot be
// reached is an error wrapping ErrUnreachable.
func (a *Allocator) CheckAccess(ctx context.Context) ([]Missing, error) {
	tok, _, err := a.client.ACLTokens().Self(queryOpts(ctx))
	switch {
	case err == nil && tok != nil && tok.Type == "management":
		return nil, nil
	case err != nil:
		ce := nomadErr(op{"read own token", "a valid ACL token"}, "", err)
		var ure api.UnexpectedResponseError
		if errors.As(err, &ure) && strings.Contains(strings.ToLower(ure.Body()), "acl support disabled") {
			return nil, nil // ACLs off: everything is allowed
		}
		if retryable(ce) {
			return nil, ce
		}
		// Reading its own token needs no capability: a refusal means Nomad
		// does not know the token at all.
		if isDenied(ce) {
			return []Missing{{Capability: "a valid ACL token", Impact: "every call to Nomad", Err: ce}}, nil
		}
		// Anything else is odd, but the probes below still tell what works.
	}

	var missing []Missing
	check := func(o op, impact string, call func() error) error {
		err := call()
		if err == nil || isNotFound(err) {
			return nil
		}
		ce := nomadErr(o, "", err)
		switch {
		case isDenied(ce):
			missing = append(missing, Missing{Capability: o.capability, Impact: impact, Err: ce})
			return nil
		case retryable(ce):
			return ce
		}
		return nil // refused for another reason: the ACL check passed
	}
	probes := []struct {
		o      op
		impact string
		call   func() error
	}{
		{opListJobs, "re-adopting sessions after a restart, orphan GC, reconcile", func() error {
			_, _, err := a.client.Jobs().List((&api.QueryOptions{Prefix: jobPrefix + probeID}).WithContext(ctx))
			return err
		}},
		{opReadJob, "starting sessions (following allocations), discovery, health", func() error {
			_, _, err := a.client.Jobs().Info(probeID, queryOpts(ctx))
			return err
		}},
		{opReadVolume, "starting sessions on a cargo, deleting cargos", func() error {
			_, _, err := a.client.HostVolumes().Get(noVolume, queryOpts(ctx))
			return err
		}},
		{opCreateVolume, "creating sandboxes and cargos", func() error {
			// No name, no plugin: rejected as invalid after the ACL check.
			_, _, err := a.client.HostVolumes().Create(&api.HostVolumeCreateRequest{Volume: &api.HostVolume{}}, writeOpts(ctx))
			return err
		}},
		{opDeleteVolume, "deleting sandboxes and cargos", func() error {
			_, _, err := a.client.HostVolumes().Delete(&api.HostVolumeDeleteRequest{ID: noVolume}, writeOpts(ctx))
			return err
		}},
		{opRegisterProbe, "starting sessions", func() error { return a.probeSubmit(ctx) }},
	}
	for _, p := range probes {
		if err := check(p.o, p.impact, p.call); err != nil {
			return missing, fmt.Errorf("check nomad token: %w", err)
		}
	}
	return missing, nil
}

// probeSubmit registers and purges a parameterized job that claims a cargo
// volume: it needs submit-job and mount-readwrite on "bay-cargo-*" exactly as
// a session does, and Nomad creates no evaluation for it.
func (a *Allocator) probeSubmit(ctx context.Context) error {
	id := jobPrefix + probeID
	if a.cfg.Job.InstanceID != "" {
		id += "-" + a.cfg.Job.InstanceID
	}
	job := api.NewBatchJob(id, id, a.cfg.Job.Region, 1)
	if ns := a.cfg.Job.Namespace; ns != "" {
		job.Namespace = &ns
	}
	job.Datacenters = []string{"*"}
	job.ParameterizedJob = &api.ParameterizedJobConfig{}
	job.Meta = map[string]string{"bay.purpose": "token check; purged at once"}
	group := api.NewTaskGroup(jobspecs.GroupName, 1)
	group.Volumes = map[string]*api.VolumeRequest{"cargo": {
		Name: "cargo", Type: "host", Source: volumePrefix + probeID,
		AccessMode: jobspecs.VolumeAccessMode, AttachmentMode: jobspecs.VolumeAttachmentMode,
	}}
	task := api.NewTask("probe", "raw_exec")
	task.Config = map[string]any{"command": "/bin/true"}
	group.AddTask(task)
	job.AddTaskGroup(group)
	if _, _, err := a.client.Jobs().Register(job, writeOpts(ctx)); err != nil {
		return err
	}
	if _, _, err := a.client.Jobs().Deregister(id, true, writeOpts(ctx)); err != nil && !isNotFound(err) {
		a.log.Warn("purge token-check job", "job_id", id, "error", err)
	}
	return nil
}

// FormatMissing renders CheckAccess's answer for a log or an error.
func FormatMissing(missing []Missing) string {
	parts := make([]string, 0, len(missing))
	for _, m := range missing {
		parts = append(parts, fmt.Sprintf("%s (needed for %s)", m.Capability, m.Impact))
	}
	return strings.Join(parts, "; ")
}
