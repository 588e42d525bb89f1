package cart

import (
	"errors"
	"testing"
)

func TestAddMergesLinesAndKeepsOrder(t *testing.T) {
	var c Cart
	for _, step := range []struct {
		id  string
		qty int
	}{{"p2", 1}, {"p1", 2}, {"p2", 3}} {
		if err := c.Add(step.id, step.qty); err != nil {
			t.Fatalf("Add(%s, %d): %v", step.id, step.qty, err)
		}
	}
	want := []Line{{"p2", 4}, {"p1", 2}}
	if len(c.Lines) != len(want) {
		t.Fatalf("lines = %v, want %v", c.Lines, want)
	}
	for i := range want {
		if c.Lines[i] != want[i] {
			t.Errorf("line %d = %v, want %v", i, c.Lines[i], want[i])
		}
	}
	if got := c.Count(); got != 6 {
		t.Errorf("Count = %d, want 6", got)
	}
	if got, want := c.TotalCents(), 4*1850+2*1400; got != want {
		t.Errorf("TotalCents = %d, want %d", got, want)
	}
}

func TestBadInputLeavesCartUnchanged(t *testing.T) {
	c := Cart{Lines: []Line{{"p1", 98}}}
	cases := []struct {
		name string
		op   func(*Cart) error
	}{
		{"unknown product", func(c *Cart) error { return c.Add("p999", 1) }},
		{"zero qty", func(c *Cart) error { return c.Add("p1", 0) }},
		{"negative qty", func(c *Cart) error { return c.Add("p2", -3) }},
		{"qty over max", func(c *Cart) error { return c.Add("p2", 100) }},
		{"line over max", func(c *Cart) error { return c.Add("p1", 2) }},
		{"set out of range", func(c *Cart) error { return c.Set("p1", 100) }},
		{"set unknown", func(c *Cart) error { return c.Set("nope", 1) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := c.Clone()
			err := tc.op(&d)
			var inv *InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("err = %v, want *InvalidError", err)
			}
			if inv.Message == "" {
				t.Error("empty message")
			}
			if len(d.Lines) != 1 || d.Lines[0] != (Line{"p1", 98}) {
				t.Errorf("cart changed to %v", d.Lines)
			}
		})
	}
}

func TestSetRemoveAndNotInCart(t *testing.T) {
	c := Cart{Lines: []Line{{"p1", 1}, {"p3", 2}}}
	if err := c.Set("p3", 7); err != nil {
		t.Fatal(err)
	}
	if c.Qty("p3") != 7 {
		t.Errorf("Qty(p3) = %d, want 7", c.Qty("p3"))
	}
	var nic *NotInCartError
	if err := c.Set("p2", 1); !errors.As(err, &nic) {
		t.Errorf("Set(p2) err = %v, want NotInCartError", err)
	}
	if err := c.Remove("p1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Remove("p1"); !errors.As(err, &nic) {
		t.Errorf("second Remove err = %v, want NotInCartError", err)
	}
	if len(c.Lines) != 1 || c.Lines[0].ProductID != "p3" {
		t.Errorf("lines = %v", c.Lines)
	}
	c.Clear()
	if c.Count() != 0 {
		t.Errorf("Count after Clear = %d", c.Count())
	}
}

func TestValidate(t *testing.T) {
	for _, bad := range []Cart{
		{Lines: []Line{{"p1", 0}}},
		{Lines: []Line{{"px", 1}}},
		{Lines: []Line{{"p1", 1}, {"p1", 2}}},
	} {
		if bad.Validate() == nil {
			t.Errorf("Validate(%v) = nil, want error", bad.Lines)
		}
	}
	if err := (Cart{Lines: []Line{{"p1", 99}, {"p10", 1}}}).Validate(); err != nil {
		t.Errorf("valid cart: %v", err)
	}
}

func TestCloneSharesNoMemory(t *testing.T) {
	c := Cart{Lines: []Line{{"p1", 1}}}
	d := c.Clone()
	d.Lines[0].Qty = 5
	if c.Lines[0].Qty != 1 {
		t.Error("Clone shares its backing array")
	}
}

func TestCatalog(t *testing.T) {
	ps := Products()
	if len(ps) < 8 || len(ps) > 12 {
		t.Fatalf("catalog has %d products, want 8-12", len(ps))
	}
	seen := map[string]bool{}
	for _, p := range ps {
		if seen[p.ID] || p.Name == "" || p.PriceCents <= 0 {
			t.Errorf("bad product %+v", p)
		}
		seen[p.ID] = true
	}
	if FormatCents(1299) != "$12.99" || FormatCents(5) != "$0.05" {
		t.Errorf("FormatCents: %s %s", FormatCents(1299), FormatCents(5))
	}
}
