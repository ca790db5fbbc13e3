package main

// parts lists every gateway and service, in start order. Adding a protocol
// is one line here plus its file beside this one.
func parts() []part {
	return []part{
		wsPart(),
		dashboardPart(),
		mqttsnPart(),
		coapPart(),
		simPart(), // keep last: --demo starts its nodes once the others listen
	}
}
