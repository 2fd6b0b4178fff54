package gateway

import (
	"fmt"
	"sort"

	"github.com/gofiber/fiber/v2"

	"github.com/bay-sandbox/bay/profiles"
)

type profileResources struct {
	CPUs   float64 `json:"cpus"`
	Memory string  `json:"memory"`
}

type profileContainer struct {
	Name         string           `json:"name"`
	RuntimeType  string           `json:"runtime_type"`
	Capabilities []string         `json:"capabilities"`
	Resources    profileResources `json:"resources"`
}

type profileResponse struct {
	ID           string             `json:"id"`
	Image        string             `json:"image"`
	Resources    profileResources   `json:"resources"`
	Capabilities []string           `json:"capabilities"`
	IdleTimeout  int64              `json:"idle_timeout"`
	Description  *string            `json:"description"`
	Containers   []profileContainer `json:"containers"`
}

func resourcesView(r profiles.Resources) profileResources {
	return profileResources{CPUs: float64(r.CPU) / 1000, Memory: fmt.Sprintf("%dm", r.MemoryMB)}
}

func sortedCopy(in []string) []string {
	out := append([]string{}, in...)
	sort.Strings(out)
	return out
}

func (s *Server) listProfiles(c *fiber.Ctx) error {
	detail, err := queryBool(c, "detail")
	if err != nil {
		return err
	}
	all := s.profiles.All()
	items := make([]profileResponse, 0, len(all))
	for i := range all {
		p := &all[i]
		r := profileResponse{ID: p.ID, Capabilities: p.Capabilities(), IdleTimeout: int64(p.IdleTimeout.Seconds())}
		if len(p.Containers) > 0 {
			primary := p.Containers[0]
			r.Image = primary.Image
			if r.Image == "" {
				r.Image = "bay/" + primary.RuntimeType
			}
			r.Resources = resourcesView(primary.Resources)
		}
		if detail != nil && *detail {
			if p.Description != "" {
				d := p.Description
				r.Description = &d
			}
			r.Containers = make([]profileContainer, len(p.Containers))
			for i, ct := range p.Containers {
				r.Containers[i] = profileContainer{Name: ct.Name, RuntimeType: ct.RuntimeType,
					Capabilities: sortedCopy(ct.Capabilities), Resources: resourcesView(ct.Resources)}
			}
		}
		items = append(items, r)
	}
	return c.JSON(fiber.Map{"items": items})
}
