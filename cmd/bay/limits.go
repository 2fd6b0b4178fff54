package main

import (
	"github.com/hashicorp/go-hclog"

	"github.com/bay-sandbox/bay/config"
	"github.com/bay-sandbox/bay/gateway"
)

// applyLimits copies the limits block into the gateway's config, after
// raising the descriptor limit: the connection cap stays below it, with
// room for sessions, the store and runtime connections, so that clients
// are turned away by the cap (with an answer) and never by EMFILE.
func applyLimits(gw *gateway.Config, l config.Limits, log hclog.Logger) {
	gw.MaxTTL = l.MaxTTL
	gw.HeaderTimeout = l.HeaderTimeout
	gw.BodyTimeout = l.BodyTimeout
	gw.IdleTimeout = l.IdleTimeout
	gw.WriteTimeout = l.WriteTimeout
	gw.BodyLimit = l.MaxBodyBytes
	gw.Conns = gateway.ConnLimits{MaxConns: l.MaxConnections, MaxConnsPerIP: l.MaxConnectionsPerIP}
	nofile, err := gateway.RaiseFileLimit()
	if err != nil {
		log.Warn("raise open file limit", "error", err)
	}
	if nofile == 0 {
		return
	}
	reserve := nofile / 8
	if reserve < 256 {
		reserve = 256
	}
	if nofile <= reserve {
		return
	}
	fit := int(nofile - reserve)
	if gw.Conns.MaxConns == 0 || gw.Conns.MaxConns > fit {
		if gw.Conns.MaxConns > fit {
			log.Info("connection cap lowered to fit the open file limit", "max_connections", fit, "nofile", nofile)
		}
		gw.Conns.MaxConns = fit
	}
	log.Debug("connection limits", "nofile", nofile, "max_connections", gw.Conns.MaxConns, "max_connections_per_ip", gw.Conns.MaxConnsPerIP)
}
