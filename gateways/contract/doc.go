// Package contract holds no code: its test runs the same command cases
// against all four gateways (CoAP with coapsim, MQTT with mqttsim on the
// embedded listener, MQTT-SN with snsim through the MQTT-SN gateway,
// websocket with wssim) and checks that each answers with the same
// bus.Reply code, by the one confirmation rule of package presence:
//
//	ok        the node confirmed the command
//	refused   the node said no (a 4.xx answer, or another value reported)
//	timeout   the node reported nothing within the command timeout
//	unknown   a node no gateway owns: no_gateway, answered by the queue (gateways/queue)
//
// busy is decided by the tracker's command pool alone, the same code for
// every gateway; package presence tests it.
package contract
