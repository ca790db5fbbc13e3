package sites

import "github.com/goaiot/goaiot/bus"

// LeafDeny are the subjects that never cross a site's leaf connection, in
// either direction (bus.LeafRemote DenyImports and DenyExports): node
// events. A site's values reach the hub only through its NODES stream,
// which the hub's stream sources and republishes; a site never takes the
// other sites' values, which its own stream would store and the hub then
// source a second time.
func LeafDeny() []string { return []string{bus.SubjectAllNodes} }

// LeafPublish is what a site may send into the hub when the hub has a leaf
// user per site (bus.LeafUser.Publish): its own aiot.site.<site> tree
// (heartbeats), replies to requests (commands from the hub, JetStream API
// answers: every role's inboxes, bus.Inboxes) and the messages of the hub stream's source consumer. Node
// events (they come through the site's stream), commands to other sites'
// nodes (gateway.>), other sites' heartbeats and the hub's JetStream API
// are refused.
func LeafPublish(site string) []string {
	return append([]string{SubjectTree(site), "$JS.S.>", "$JSC.R.>"}, bus.Inboxes()...)
}
