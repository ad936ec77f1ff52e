-- token_secrets_cas.lua replaces a token's stored signing secrets if they are still
-- what the caller read, and only while the token's record exists (a record that
-- expired meanwhile is not recreated without its TTL).
--
-- KEYS[1]  the token's record (hash)
-- ARGV[1]  the secrets field as the caller read it
-- ARGV[2]  the new secrets field
--
-- Reply: 1 when replaced; 0 when the record is gone or its secrets changed.

local cur = redis.call('HGET', KEYS[1], 'secrets')
if cur ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'secrets', ARGV[2])
return 1
