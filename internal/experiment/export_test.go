package experiment

// SetBeforeStopWrite makes Stop call f between its read and its write.
func (s *Store) SetBeforeStopWrite(f func()) { s.beforeStopWrite = f }
