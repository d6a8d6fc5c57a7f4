package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"mallgrid/drivers/compere"
	comperesim "mallgrid/drivers/sim/compere"
	"mallgrid/gateway/config"
)

// mqttSimFlags describe simulated Compere MQTT meters (sim --mqtt).
type mqttSimFlags struct {
	broker, username, password string
	ids                        []string
	realTime, energy           time.Duration
	baseW                      float64
	importWh, seed             int64
	faults                     comperesim.Faults
}

// mqttOnlyFlags are the flags that mean something only with --mqtt.
func mqttOnlyFlags() []string {
	return []string{"username", "password", "id", "rt-interval", "energy-interval", "base-w", "import-wh", "seed",
		"duplicate-rate", "zero-frame-rate", "split-rate", "clock-2005-rate", "relay-fail-rate"}
}

func (m *mqttSimFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&m.broker, "mqtt", "", "serve Compere MQTT meters as clients of this broker: tcp://HOST:PORT or ssl://HOST:PORT")
	f.StringVar(&m.username, "username", "", "MQTT username the meters connect with (--mqtt)")
	f.StringVar(&m.password, "password", "", "MQTT password the meters connect with (--mqtt)")
	f.StringSliceVar(&m.ids, "id", nil, "13-character meter id(s) (--mqtt); a kpm312's is its first circuit's")
	f.DurationVar(&m.realTime, "rt-interval", comperesim.DefaultRealTime, "MQTT_RT_DATA interval (--mqtt)")
	f.DurationVar(&m.energy, "energy-interval", comperesim.DefaultEnergy, "MQTT_ENY_NOW interval (--mqtt)")
	f.Float64Var(&m.baseW, "base-w", comperesim.DefaultBaseW, "base load in W of each circuit's mall profile (--mqtt)")
	f.Int64Var(&m.importWh, "import-wh", 0, "import counter the meters start from, Wh (--mqtt)")
	f.Int64Var(&m.seed, "seed", 1, "seed of the loads and fault draws (--mqtt); each meter adds its index")
	f.Float64Var(&m.faults.Duplicate, "duplicate-rate", 0, "rate 0..1 of messages published two or three times (--mqtt)")
	f.Float64Var(&m.faults.ZeroFrame, "zero-frame-rate", 0, "rate 0..1 of uploads preceded by an all-zero frame (--mqtt)")
	f.Float64Var(&m.faults.Split, "split-rate", 0, "rate 0..1 of kpm37/kpm312 uploads split into packets (--mqtt)")
	f.Float64Var(&m.faults.Clock2005, "clock-2005-rate", 0, "rate 0..1 of meters whose clock starts in 2005 (--mqtt)")
	f.Float64Var(&m.faults.RelayFail, "relay-fail-rate", 0, "rate 0..1 of relay commands answered 02 (--mqtt)")
}

// given lists the --mqtt-only flags set on the command line.
func (m *mqttSimFlags) given(cmd *cobra.Command) []string {
	var out []string
	for _, name := range mqttOnlyFlags() {
		if cmd.Flags().Changed(name) {
			out = append(out, "--"+name)
		}
	}
	return out
}

// runMQTTSim serves the --mqtt meters until the command's context ends.
func runMQTTSim(cmd *cobra.Command, m *mqttSimFlags, modelName string) error {
	var given []string
	for _, name := range append([]string{"file"}, simLineFlags()...) {
		if name != "model" && cmd.Flags().Changed(name) {
			given = append(given, "--"+name)
		}
	}
	if len(given) > 0 {
		return fmt.Errorf("--mqtt serves meters on a broker; leave out %s", strings.Join(given, ", "))
	}
	model, ok := compere.ModelByName(modelName)
	if !ok {
		return fmt.Errorf("--model %q: --mqtt serves %s", modelName, strings.Join(compere.ModelNames(), ", "))
	}
	if len(m.ids) == 0 {
		return fmt.Errorf("--mqtt needs --id: the meters' 13-character ids")
	}
	log := newLogger(config.Log{Format: "console"}, cmd.ErrOrStderr(), false, time.Now)
	var devices []*comperesim.Device
	meters := 0
	for i, id := range m.ids {
		d, err := comperesim.New(comperesim.Config{
			Model: model, ID: id, Broker: m.broker, Username: m.username, Password: m.password,
			RealTime: m.realTime, Energy: m.energy, BaseW: m.baseW, ImportWh: m.importWh,
			Seed: m.seed + int64(i), Faults: m.faults, Log: log,
		})
		if err != nil {
			return fmt.Errorf("--id %s: %w", id, err)
		}
		devices = append(devices, d)
		meters += len(d.Circuits())
	}
	fmt.Fprintf(cmd.OutOrStdout(), "mallgrid sim: %d %s meter(s) %s on %s\n", meters, model.Name, strings.Join(m.ids, ","), m.broker)
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	var wg sync.WaitGroup
	for _, d := range devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = d.Run(ctx) // returns nil once ctx ends
		}()
	}
	wg.Wait()
	return nil
}
