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

// volumeRef returns the volume a session claims, waiting (bounded by ctx)
// until Nomad can place on it: a dynamic host volume is schedulable only
// once its client's node fingerprint carries it and it reads "ready", which
// takes 1 s on a dev agent and 5–10 s on a normal client. A locator that
// already records the host path was ready once and is taken as is.
func (a *Allocator) volumeRef(ctx context.Context, c allocator.Cargo) (volumeRef, error) {
	r, err := parseLocator(c.Locator)
	if err != nil {
		return volumeRef{}, err
	}
	if r.Name != "" && r.HostPath != "" {
		return r, nil
	}
	v, err := a.waitReady(ctx, r.ID)
	if err != nil {
		if isNotFound(err) {
			return volumeRef{}, fmt.Errorf("cargo %s: volume %s: %w", c.ID, r.ID, errVolumeMissing)
		}
		return volumeRef{}, err
	}
	return volumeRef{ID: v.ID, Name: v.Name, HostPath: v.HostPath, NodeID: v.NodeID}, nil
}

// waitReady follows a volume (blocking queries) until it is ready.
func (a *Allocator) waitReady(ctx context.Context, id string) (*api.HostVolume, error) {
	var index uint64
	for {
		q := (&api.QueryOptions{WaitIndex: index, WaitTime: 5 * time.Second}).WithContext(ctx)
		v, meta, err := a.client.HostVolumes().Get(id, q)
		if err != nil {
			if isNotFound(err) {
				return nil, err
			}
			return nil, nomadErr(opReadVolume, id, err)
		}
		if v.State == api.HostVolumeStateReady && v.HostPath != "" {
			return v, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("volume %s is still %s: %w", id, v.State, ctx.Err())
		}
		index = meta.LastIndex
	}
}

// CreateCargo creates the cargo's dynamic host volume (plugin VolumePlugin,
// node pool VolumeNodePool). Creating a cargo that already has a volume
// returns that volume (a retried create).
//
// It returns once Nomad has made the volume, without waiting for it to
// read ready (spec.Ready asks for that): the request that creates a cargo
// does not need to place anything on it, and a normal client reports a
// new volume only with its next node update, 5–10 s later. The first
// session start on the cargo waits instead (volumeRef), and the gateway's
// cargo pool makes ready volumes ahead so that wait is rare.
func (a *Allocator) CreateCargo(ctx context.Context, spec allocator.CargoSpec) (allocator.Cargo, error) {
	if spec.ID == "" {
		return allocator.Cargo{}, errors.New("create cargo: empty id")
	}
	name := volumePrefix + spec.ID
	if v, err := a.findVolume(ctx, name); err != nil {
		return allocator.Cargo{}, err
	} else if v != nil {
		return a.cargoOf(ctx, spec, v)
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
	return a.cargoOf(ctx, spec, resp.Volume)
}

// cargoOf makes the cargo of a volume, after waiting for it to be ready
// when spec.Ready asks. The locator records the host path only once the
// volume is ready, so a start on a not-yet-ready cargo knows to wait.
func (a *Allocator) cargoOf(ctx context.Context, spec allocator.CargoSpec, v *api.HostVolume) (allocator.Cargo, error) {
	if spec.Ready && (v.State != api.HostVolumeStateReady || v.HostPath == "") {
		rv, err := a.waitReady(ctx, v.ID)
		if err != nil {
			return allocator.Cargo{}, err
		}
		v = rv
	}
	ref := volumeRef{ID: v.ID, Name: v.Name, NodeID: v.NodeID}
	if v.State == api.HostVolumeStateReady {
		ref.HostPath = v.HostPath
	}
	return allocator.Cargo{ID: spec.ID, Backend: BackendHostVolume, Locator: ref.locator()}, nil
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

// DeleteCargo deletes the cargo's volume once no allocation claims it. A
// session still meant to run on it makes the call fail with
// allocator.ErrCargoInUse; allocations being stopped are waited for
// (bounded by ctx) until their client reports them finished, so Gull has
// saved its browser profile into the cargo and exited before the volume's
// directory is removed. Nomad refusing the delete because a claim is not
// released yet, or the plugin racing a last write ("directory not empty"),
// is retried within ctx. A missing volume is not an error.
func (a *Allocator) DeleteCargo(ctx context.Context, c allocator.Cargo) error {
	if c.Backend != "" && c.Backend != BackendHostVolume {
		return fmt.Errorf("delete cargo %s: backend %q is not %q", c.ID, c.Backend, BackendHostVolume)
	}
	r, err := parseLocator(c.Locator)
	if err != nil {
		return fmt.Errorf("delete cargo %s: %w", c.ID, err)
	}
	backoff := 100 * time.Millisecond
	for {
		gone, err := a.waitUnclaimed(ctx, c.ID, r.ID)
		if err != nil || gone {
			return err
		}
		_, _, err = a.client.HostVolumes().Delete(&api.HostVolumeDeleteRequest{ID: r.ID}, writeOpts(ctx))
		if err == nil || isNotFound(err) {
			return nil
		}
		var ure api.UnexpectedResponseError
		body := ""
		if errors.As(err, &ure) {
			body = strings.ToLower(ure.Body())
		}
		switch {
		case strings.Contains(body, "no such volume"):
			return nil
		case strings.Contains(body, "in use"), strings.Contains(body, "not empty"):
			// A claim not released yet, or a last write racing the plugin's
			// removal: the next round waits for claims again.
			if ctx.Err() != nil {
				return fmt.Errorf("delete cargo %s: %w: %s", c.ID, allocator.ErrCargoInUse, strings.TrimSpace(ure.Body()))
			}
			a.log.Debug("volume delete refused, retrying", "volume_id", r.ID, "answer", strings.TrimSpace(ure.Body()))
			sleep(ctx, backoff)
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		return nomadErr(opDeleteVolume, r.ID, err)
	}
}

// waitUnclaimed blocks until no live allocation claims the volume; gone
// reports a volume that no longer exists.
func (a *Allocator) waitUnclaimed(ctx context.Context, cargoID, volumeID string) (gone bool, err error) {
	var index uint64
	for {
		q := (&api.QueryOptions{WaitIndex: index, WaitTime: 5 * time.Second}).WithContext(ctx)
		v, meta, err := a.client.HostVolumes().Get(volumeID, q)
		if err != nil {
			if isNotFound(err) {
				return true, nil
			}
			if ctx.Err() != nil {
				return false, fmt.Errorf("delete cargo %s: %w: volume %s still claimed", cargoID, allocator.ErrCargoInUse, volumeID)
			}
			return false, nomadErr(opReadVolume, volumeID, err)
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
			return false, fmt.Errorf("delete cargo %s: %w: volume %s is claimed by %d running allocation(s)", cargoID, allocator.ErrCargoInUse, volumeID, running)
		}
		if stopping == 0 {
			return false, nil
		}
		if ctx.Err() != nil {
			return false, fmt.Errorf("delete cargo %s: %w: %d allocation(s) still stopping", cargoID, allocator.ErrCargoInUse, stopping)
		}
	}
}

// ListCargoVolumes lists every cargo volume ("bay-cargo-*") of the
// namespace with the cargo id its name carries.
func (a *Allocator) ListCargoVolumes(ctx context.Context) ([]allocator.CargoVolume, error) {
	stubs, _, err := a.client.HostVolumes().List(nil, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, nomadErr(opListVolumes, "", err)
	}
	var out []allocator.CargoVolume
	for _, s := range stubs {
		id, ok := strings.CutPrefix(s.Name, volumePrefix)
		if !ok || id == "" {
			continue
		}
		ref := volumeRef{ID: s.ID, Name: s.Name, NodeID: s.NodeID}
		out = append(out, allocator.CargoVolume{
			Cargo:     allocator.Cargo{ID: id, Backend: BackendHostVolume, Locator: ref.locator()},
			CreatedAt: time.Unix(0, s.CreateTime),
		})
	}
	return out, nil
}
