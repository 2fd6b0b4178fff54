// Package opstest holds the Nomad allocator's tests against an agent shaped
// as operators run it (server + client, persistent data dir, the real node
// update interval, ACLs): they need their own agent, and only one agent may
// run at a time, so they live apart from allocator/nomad's dev-agent tests.
package opstest
