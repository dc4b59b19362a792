import { loadConfig } from '../../../shared/config.ts';
import { createEnsureProfileHandler } from '../../../shared/ensure-profile-handler.ts';

// A bad environment throws here, at boot: the function never serves with a half-read config.
Deno.serve(createEnsureProfileHandler({ config: loadConfig(Deno.env.toObject()) }));
