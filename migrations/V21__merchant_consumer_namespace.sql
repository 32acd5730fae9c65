-- Schema v21: the API's consumer references live in the merchant's own namespace,
-- 'api:<reference>', so they can never name a device ('device:…') or a signed-in person
-- ('oidc:…'). Coupons claimed through the API before this are moved into it; ones whose
-- reference already looked like a device or a person cannot be told apart and stay.
UPDATE coupons SET consumer = 'api:' || consumer
 WHERE consumer NOT LIKE 'device:%' AND consumer NOT LIKE 'oidc:%' AND consumer NOT LIKE 'api:%';
