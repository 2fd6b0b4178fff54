package main

import (
	"errors"

	"github.com/hashicorp/go-hclog"

	"github.com/bay-sandbox/bay/allocator"
	"github.com/bay-sandbox/bay/config"
)

func newNomadAllocator(cfg *config.Config, bins map[string]string, env map[string]map[string]string, log hclog.Logger) (allocator.Allocator, error) {
	return nil, errors.New("nomad allocator not wired yet")
}
