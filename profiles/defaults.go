package profiles

import (
	"slices"
	"time"
)

// Defaults applied to fields a profile leaves out.
const (
	DefaultIdleTimeout     = 30 * time.Minute
	DefaultWarmRotateTTL   = 30 * time.Minute
	DefaultRestartAttempts = 3
	DefaultRestartDelay    = time.Second
)

// Names of the built-in profiles, used when the configuration defines none.
const (
	PythonDefault = "python-default"
	BrowserPython = "browser-python"
)

// RuntimeCapabilities lists, per runtime type, the capabilities a container
// of that type can offer (and offers by default).
func RuntimeCapabilities(runtimeType string) []string {
	switch runtimeType {
	case RuntimeShip:
		return []string{CapPython, CapShell, CapFilesystem}
	case RuntimeGull:
		return []string{CapBrowser}
	}
	return nil
}

// KnownCapability reports whether c is a capability some runtime offers.
func KnownCapability(c string) bool {
	return slices.Contains([]string{CapPython, CapShell, CapFilesystem, CapBrowser}, c)
}

// NewContainer returns a container of the given runtime type with that
// type's defaults: port, capabilities and resources (ship 500 MHz/512 MB,
// gull 1000 MHz/1024 MB). An unknown type gets only the name and type.
func NewContainer(name, runtimeType string) Container {
	c := containerDefaults(runtimeType)
	c.Name = name
	return c
}

func containerDefaults(runtimeType string) Container {
	c := Container{RuntimeType: runtimeType, Capabilities: RuntimeCapabilities(runtimeType)}
	switch runtimeType {
	case RuntimeShip:
		c.RuntimePort = DefaultShipPort
		c.Resources = Resources{CPU: 500, MemoryMB: 512}
	case RuntimeGull:
		c.RuntimePort = DefaultGullPort
		c.Resources = Resources{CPU: 1000, MemoryMB: 1024}
	}
	return c
}

// Defaults are the profiles a gateway has when its configuration defines
// none: python-default (one Ship) and browser-python (Ship + Gull sharing
// the cargo; Ship serves the filesystem).
func Defaults() []Profile {
	base := func(id, desc string, cs ...Container) Profile {
		return Profile{
			ID:            id,
			Description:   desc,
			IdleTimeout:   DefaultIdleTimeout,
			WarmRotateTTL: DefaultWarmRotateTTL,
			Restart:       RestartPolicy{Attempts: DefaultRestartAttempts, Delay: DefaultRestartDelay},
			Containers:    cs,
		}
	}
	ship := NewContainer("ship", RuntimeShip)
	browserShip := NewContainer("ship", RuntimeShip)
	browserShip.PrimaryFor = []string{CapFilesystem}
	return []Profile{
		base(PythonDefault, "Python, shell and filesystem in one Ship container", ship),
		base(BrowserPython, "Python, shell and filesystem (Ship) plus a browser (Gull) on one workspace",
			browserShip, NewContainer("gull", RuntimeGull)),
	}
}
