package natstest

import "testing"

func TestStartKillRestart(t *testing.T) {
	s := Start(t)
	if err := Ping(s.Addr); err != nil {
		t.Fatal(err)
	}
	s.Kill()
	if err := Ping(s.Addr); err == nil {
		t.Fatal("killed server still answers")
	}
	s.Restart()
	if err := Ping(s.Addr); err != nil {
		t.Fatalf("restarted server: %v", err)
	}
}
