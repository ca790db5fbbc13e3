// Package snsim is a simulated MQTT-SN node that behaves like Pyaiot's RIOT
// MQTT-SN firmware (node_mqtt_bmx280 with emcute), for tests, demos and load:
// many nodes run side by side in one process.
//
// What a node does, as the firmware does it:
//   - CONNECT with clean session and a keep-alive (default 360 s), from the
//     configured local address (RIOT uses source port 1883).
//   - A REGISTER before every PUBLISH, even of a topic registered before,
//     and every PUBLISH at QoS 1, waiting for its PUBACK (stop and wait).
//   - At boot: node/check {"id":"<id>"}, node/<id>/resources (the list of
//     resources), the values board, mcu, os, name, and the sensors.
//   - Every SensorInterval (default 5 s): temperature "21.5°C", pressure
//     "1013.25hPa", humidity "45.10%" as {"value":"…"}, following slow
//     smooth curves with a little noise (each node its own phase).
//   - Every CheckInterval (default 30 s): node/check.
//
// With Commands set it also behaves like Pyaiot's pycom and test nodes: it
// subscribes (QoS 1) to gateway/<id>/+/set, gateway/<id>/discover and
// gateway/check, lists "led" among its resources, and
//   - gateway/<id>/led/set "0" or "1" sets the LED and republishes
//     node/<id>/led (other values are ignored, as the firmware does);
//   - gateway/<id>/discover "resources" or "values" republishes those;
//   - gateway/check republishes node/check.
//
// A node whose message goes unanswered after the retries, or that the
// gateway sends DISCONNECT, connects again after a pause.
//
// Example, a hundred nodes against a local gateway:
//
//	for i := range 100 {
//		n, err := snsim.New(snsim.Config{
//			Gateway: "127.0.0.1:1885",
//			NodeID:  fmt.Sprintf("sn-%03d", i),
//			Commands: true,
//			Logger:  log,
//		})
//		if err != nil { … }
//		go n.Run(ctx)
//	}
package snsim
