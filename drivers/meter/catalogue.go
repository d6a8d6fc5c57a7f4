package meter

import (
	"fmt"
	"sort"
)

// Catalogue holds the meter models a gateway knows: the built-in ones and
// those declared in the technician's YAML. It is read-only once built.
type Catalogue struct {
	models map[string]*Model
}

// NewCatalogue returns the built-in models plus custom. A custom model may
// not reuse a built-in name, and every model must pass Validate.
func NewCatalogue(custom ...*Model) (*Catalogue, error) {
	c := &Catalogue{models: make(map[string]*Model)}
	for _, m := range Builtin() {
		c.models[m.Name] = m
	}
	for _, m := range custom {
		if _, dup := c.models[m.Name]; dup {
			return nil, fmt.Errorf("model %s: name already taken", m.Name)
		}
		if err := m.Validate(); err != nil {
			return nil, err
		}
		c.models[m.Name] = m
	}
	return c, nil
}

// Lookup returns the model called name, or ErrUnknownModel.
func (c *Catalogue) Lookup(name string) (*Model, error) {
	m, ok := c.models[name]
	if !ok {
		return nil, fmt.Errorf("%w %q (known: %v)", ErrUnknownModel, name, c.Names())
	}
	return m, nil
}

// Names returns the catalogue's model names, sorted.
func (c *Catalogue) Names() []string {
	names := make([]string, 0, len(c.models))
	for n := range c.models {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Builtin returns fresh copies of the built-in models, one file each.
func Builtin() []*Model {
	return []*Model{KPM33B(), SDM120(), SDM630(), DDSU666(), DTSU666()}
}

// BuiltinNames returns the names of the built-in models.
func BuiltinNames() []string {
	var names []string
	for _, m := range Builtin() {
		names = append(names, m.Name)
	}
	sort.Strings(names)
	return names
}
