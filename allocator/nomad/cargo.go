package nomad

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/bay-sandbox/bay/allocator"
	"github.com/bay-sandbox/bay/jobspecs"
)

// volumePrefix names every cargo volume: "bay-cargo-<cargo id>". Names must
// be unique for the group's volume block to find exactly this volume.
const volumePrefix = "bay-cargo-"

// errVolumeMissing: the cargo's volume does not exist (any more).
var errVolumeMissing = errors.New("cargo volume does not exist")

// volumeRef is what a cargo's Locator holds (JSON): the volume id, plus the
// name the job's volume block needs and the host path raw_exec tasks get,
// so a start costs no extra lookup. A bare id is accepted too.
type volumeRef struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	HostPath string `json:"host_path"`
	NodeID   string `json:"node_id,omitempty"`
}

func (r volumeRef) locator() string {
	b, _ := json.Marshal(r)
	return string(b)
}

func parseLocator(loc string) (volumeRef, error) {
	loc = strings.TrimSpace(loc)
	if loc == "" {
		return volumeRef{}, errors.New("empty cargo locator")
	}
	if !strings.HasPrefix(loc, "{") {
		return volumeRef{ID: loc}, nil
	}
	var r volumeRef
	if err := json.Unmarshal([]byte(loc), &r); err != nil {
		return volumeRef{}, fmt.Errorf("cargo locator %q: %w", loc, err)
	}
	if r.ID == "" {
		return volumeRef{}, fmt.Errorf("cargo locator %q has no volume id", loc)
	}
	return r, nil
}

// volumeRef completes a cargo's locator from Nomad when it lacks the name or
// host path.
func (a *Allocator) volumeRef(ctx context.Context, c allocator.Cargo) (volumeRef, error) {
	r, err := parseLocator(c.Locator)
	if err != nil {
		return volumeRef{}, err
	}
	if r.Name != "" && r.HostPath != "" {
		return r, nil
	}
	v, _, err := a.client.HostVolumes().Get(r.ID, queryOpts(ctx))
	if err != nil {
		if isNotFound(err) {
			return volumeRef{}, fmt.Errorf("cargo %s: volume %s: %w", c.ID, r.ID, errVolumeMissing)
		}
		return volumeRef{}, nomadErr(opReadVolume, r.ID, err)
	}
	return volumeRef{ID: v.ID, Name: v.Name, HostPath: v.HostPath, NodeID: v.NodeID}, nil
}

// CreateCargo creates the cargo's dynamic host volume (plugin VolumePlugin,
// node pool VolumeNodePool). Creating a cargo that already has a volume
// returns that volume (a retried create).
func (a *Allocator) CreateCargo(ctx context.Context, spec allocator.CargoSpec) (allocator.Cargo, error) {
	if spec.ID == "" {
		return allocator.Cargo{}, errors.New("create cargo: empty id")
	}
	name := volumePrefix + spec.ID
	if v, err := a.findVolume(ctx, name); err != nil {
		return allocator.Cargo{}, err
	} else if v != nil {
		return a.cargoOf(ctx, spec.ID, v)
	}
	vol := &api.HostVolume{
		Name:     name,
		PluginID: a.cfg.VolumePlugin,
		NodePool: a.cfg.VolumeNodePool,
		RequestedCapabilities: []*api.HostVolumeCapability{{
			AttachmentMode: api.HostVolumeAttachmentMode(jobspecs.VolumeAttachmentMode),
			AccessMode:     api.HostVolumeAccessMode(jobspecs.VolumeAccessMode),
		}},
	}
	if spec.SizeLimitMB > 0 {
		vol.RequestedCapacityMaxBytes = int64(spec.SizeLimitMB) << 20
	}
	resp, _, err := a.client.HostVolumes().Create(&api.HostVolumeCreateRequest{Volume: vol}, writeOpts(ctx))
	if err != nil {
		return allocator.Cargo{}, nomadErr(opCreateVolume, name, err)
	}
	if resp == nil || resp.Volume == nil {
		return allocator.Cargo{}, fmt.Errorf("create volume %s: nomad returned no volume", name)
	}
	return a.cargoOf(ctx, spec.ID, resp.Volume)
}

// cargoOf waits for the volume to be ready and makes its cargo.
func (a *Allocator) cargoOf(ctx context.Context, id string, v *api.HostVolume) (allocator.Cargo, error) {
	var index uint64
	for v.State != api.HostVolumeStateReady || v.HostPath == "" {
		if ctx.Err() != nil {
			return allocator.Cargo{}, fmt.Errorf("volume %s is %s: %w", v.ID, v.State, ctx.Err())
		}
		q := (&api.QueryOptions{WaitIndex: index, WaitTime: 5 * time.Second}).WithContext(ctx)
		nv, meta, err := a.client.HostVolumes().Get(v.ID, q)
		if err != nil {
			return allocator.Cargo{}, nomadErr(opReadVolume, v.ID, err)
		}
		v, index = nv, meta.LastIndex
	}
	ref := volumeRef{ID: v.ID, Name: v.Name, HostPath: v.HostPath, NodeID: v.NodeID}
	return allocator.Cargo{ID: id, Backend: BackendHostVolume, Locator: ref.locator()}, nil
}

// findVolume returns the volume called name, if any.
func (a *Allocator) findVolume(ctx context.Context, name string) (*api.HostVolume, error) {
	stubs, _, err := a.client.HostVolumes().List(nil, (&api.QueryOptions{Prefix: ""}).WithContext(ctx))
	if err != nil {
		return nil, nomadErr(opListVolumes, "", err)
	}
	for _, s := range stubs {
		if s.Name == name {
			v, _, err := a.client.HostVolumes().Get(s.ID, queryOpts(ctx))
			if err != nil {
				if isNotFound(err) {
					return nil, nil
				}
				return nil, nomadErr(opReadVolume, s.ID, err)
			}
			return v, nil
		}
	}
	return nil, nil
}

// DeleteCargo deletes the cargo's volume. A session still claiming it makes
// the call fail with allocator.ErrCargoInUse; sessions already being
// stopped are waited for (bounded by ctx). A missing volume is not an error.
func (a *Allocator) DeleteCargo(ctx context.Context, c allocator.Cargo) error {
	if c.Backend != "" && c.Backend != BackendHostVolume {
		return fmt.Errorf("delete cargo %s: backend %q is not %q", c.ID, c.Backend, BackendHostVolume)
	}
	r, err := parseLocator(c.Locator)
	if err != nil {
		return fmt.Errorf("delete cargo %s: %w", c.ID, err)
	}
	var index uint64
	for {
		q := (&api.QueryOptions{WaitIndex: index, WaitTime: 5 * time.Second}).WithContext(ctx)
		v, meta, err := a.client.HostVolumes().Get(r.ID, q)
		if err != nil {
			if isNotFound(err) {
				return nil
			}
			return nomadErr(opReadVolume, r.ID, err)
		}
		index = meta.LastIndex
		stopping, running := 0, 0
		for _, al := range v.Allocations {
			if clientTerminal(al.ClientStatus) {
				continue
			}
			if al.DesiredStatus == api.AllocDesiredStatusRun {
				running++
			} else {
				stopping++
			}
		}
		if running > 0 {
			return fmt.Errorf("delete cargo %s: %w: volume %s is claimed by %d running allocation(s)", c.ID, allocator.ErrCargoInUse, r.ID, running)
		}
		if stopping == 0 {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("delete cargo %s: %w: %d allocation(s) still stopping", c.ID, allocator.ErrCargoInUse, stopping)
		}
	}
	if _, _, err := a.client.HostVolumes().Delete(&api.HostVolumeDeleteRequest{ID: r.ID}, writeOpts(ctx)); err != nil {
		if isNotFound(err) {
			return nil
		}
		var ure api.UnexpectedResponseError
		if errors.As(err, &ure) && strings.Contains(strings.ToLower(ure.Body()), "in use") {
			return fmt.Errorf("delete cargo %s: %w: %s", c.ID, allocator.ErrCargoInUse, strings.TrimSpace(ure.Body()))
		}
		return nomadErr(opDeleteVolume, r.ID, err)
	}
	return nil
}
