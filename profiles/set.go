package profiles

// Set is the gateway's validated profiles, looked up by id and listed in
// the order they were defined. It is read-only after NewSet, so it is safe
// for concurrent use; callers must not modify the profiles it hands out.
type Set struct {
	list []Profile
	byID map[string]int
}

// NewSet validates ps (every rule, ids unique) and indexes them. The slice
// is copied; the profiles' maps and slices are shared with the caller.
func NewSet(ps []Profile) (*Set, error) {
	if err := ValidateAll(ps); err != nil {
		return nil, err
	}
	s := &Set{list: append([]Profile(nil), ps...), byID: make(map[string]int, len(ps))}
	for i := range s.list {
		s.byID[s.list[i].ID] = i
	}
	return s, nil
}

// DefaultSet is the Set of Defaults().
func DefaultSet() *Set {
	s, err := NewSet(Defaults())
	if err != nil {
		panic("profiles: built-in defaults are invalid: " + err.Error())
	}
	return s
}

// Get returns the profile called id. A nil Set has no profiles.
func (s *Set) Get(id string) (*Profile, bool) {
	if s == nil {
		return nil, false
	}
	i, ok := s.byID[id]
	if !ok {
		return nil, false
	}
	return &s.list[i], true
}

// All returns the profiles in definition order. The slice is the caller's;
// the profiles in it are shared.
func (s *Set) All() []Profile {
	if s == nil {
		return nil
	}
	return append([]Profile(nil), s.list...)
}

// IDs returns the profile ids in definition order.
func (s *Set) IDs() []string {
	if s == nil {
		return nil
	}
	ids := make([]string, len(s.list))
	for i := range s.list {
		ids[i] = s.list[i].ID
	}
	return ids
}

// Len is the number of profiles.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.list)
}
