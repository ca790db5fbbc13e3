package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/goaiot/goaiot/bus"
	"github.com/goaiot/goaiot/gateways/mqttsn"
)

func mqttsnPart() part {
	return part{
		name:    "mqttsn",
		summary: "MQTT-SN gateway straight onto NATS (UDP --mqttsn-listen)",
		register: func(fs *flag.FlagSet) func(*system) (runner, error) {
			var cfg mqttsn.Config
			var topics string
			var gwID uint
			fs.StringVar(&topics, "mqttsn-topics", "", "MQTT-SN predefined topics file: lines of \"<id> <topic>\"")
			fs.UintVar(&gwID, "mqttsn-gateway-id", 1, "MQTT-SN gateway id sent in GWINFO and ADVERTISE (1-255)")
			fs.IntVar(&cfg.MaxClients, "mqttsn-max-clients", 10000, "MQTT-SN sessions held at most")
			fs.Float64Var(&cfg.Rate, "mqttsn-rate", 100, "datagrams per second accepted from one MQTT-SN address (bursts of 2x; negative: unlimited)")
			fs.IntVar(&cfg.MaxValueBytes, "mqttsn-max-value-bytes", bus.DefaultMaxValueBytes, "largest MQTT-SN PUBLISH payload accepted (negative: no limit)")
			fs.IntVar(&cfg.MaxResources, "mqttsn-max-resources", bus.DefaultMaxResources, "distinct resources one MQTT-SN node may publish (negative: no limit)")
			fs.Float64Var(&cfg.NodeValueRate, "mqttsn-node-rate", bus.DefaultNodeValueRate, "values per second one MQTT-SN node may publish (negative: unlimited)")
			fs.IntVar(&cfg.NodeValueBurst, "mqttsn-node-burst", bus.DefaultNodeValueBurst, "values one MQTT-SN node may publish at once above --mqttsn-node-rate")
			fs.Float64Var(&cfg.NewNodesPerSource, "mqttsn-new-nodes", bus.DefaultNewNodesPerSource, "new MQTT-SN client ids accepted per second from one IP address (negative: unlimited)")
			fs.StringVar(&cfg.AdvertiseAddr, "mqttsn-advertise", "", "send MQTT-SN ADVERTISE to this UDP address, e.g. 255.255.255.255:1885 (empty: off)")
			fs.DurationVar(&cfg.AdvertiseInterval, "mqttsn-advertise-interval", 15*time.Minute, "period of MQTT-SN ADVERTISE")
			fs.DurationVar(&cfg.RetryInterval, "mqttsn-retry", 10*time.Second, "MQTT-SN T_retry: wait for an acknowledgement before sending again")
			fs.IntVar(&cfg.Retries, "mqttsn-retries", 3, "MQTT-SN N_retry: sends again before a client counts as lost")
			return func(sys *system) (runner, error) {
				if gwID < 1 || gwID > 255 {
					return nil, fmt.Errorf("--mqttsn-gateway-id %d: want 1-255", gwID)
				}
				cfg.GatewayID = uint8(gwID)
				if topics != "" {
					t, err := mqttsn.LoadTopics(topics)
					if err != nil {
						return nil, err
					}
					cfg.Predefined = t
				}
				nc, err := sys.connect("mqttsn")
				if err != nil {
					return nil, err
				}
				cfg.Conn, cfg.Logger, cfg.Listen = nc, sys.log.With("part", "mqttsn"), sys.opts.mqttsnListen
				cfg.Name, cfg.Site = sys.gatewayName("mqttsn"), sys.opts.site
				return mqttsn.New(cfg)
			}
		},
	}
}
