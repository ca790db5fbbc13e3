package main

// parts lists every gateway and service, in start order. Adding a protocol
// is one line here plus its file beside this one.
func parts() []part {
	return []part{
		simPart(), // first: --demo may adapt other parts' flags; its nodes start once the others listen
		wsPart(),
		dashboardPart(),
		mqttsnPart(),
		mqttPart(),
		coapPart(),
		queuePart(),
		pprofPart(), // debug: off unless --pprof
	}
}
