// Package cache is Gatehouse's exact-match response cache: a nats.go micro
// service ("gatehouse-cache", queue group [bus.QueueCache]) that stores
// prepared answers in a JetStream KV bucket ([bus.Subjects.CacheBucket]).
//
// Keys are the 64-character lowercase hex SHA-256 produced by
// [bus.CacheKey]; the scope (user, tenant or global) is hashed into the key,
// so an answer cached for one scope can never be found from another.
// Entries expire after [Config.TTL] (the bucket's TTL) and the bucket is
// bounded by [Config.MaxBytes]; when it is full the oldest entries are
// evicted first.
//
// Most gets are misses (every new prompt is one). Each replica keeps an
// index of the keys the bucket may hold, learned from a metadata-only
// watch of the bucket and from its own puts, and answers a get for a key
// the index has never seen as a miss without reading the bucket; a key it
// holds is always read, so the index can cost a read but never give a
// wrong hit. Until the watch has delivered every key, and after any KV
// failure until a fresh watch has, every get reads the bucket. A key put
// through another replica is found once that put's watch update arrives
// here. [Config.MaxIndexKeys] bounds the index.
//
// Endpoints:
//
//   - [bus.Subjects.CacheGet]: [bus.CacheGetRequest] -> [bus.CacheGetResponse]
//     (a miss is a normal reply with Hit false)
//   - [bus.Subjects.CachePut]: [bus.CachePutRequest] -> [bus.CachePutResponse]
//
// Errors are micro error replies with [bus.CodeBadRequest] for a malformed
// request, a bad key or an entry over [Config.MaxEntryBytes],
// [bus.CodeUnavailable] when JetStream does not answer in time, and
// [bus.CodeInternal] for other storage failures.
package cache
