import { loadConfig } from '../../../shared/config.ts';
import { createProfileHealthHandler } from '../../../shared/profile-health-handler.ts';

// A bad environment throws here, at boot: the function never serves with a half-read config.
Deno.serve(createProfileHealthHandler({ config: loadConfig(Deno.env.toObject()) }));
