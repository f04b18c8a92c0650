using System.CommandLine;
using OrleansLimiter.Security;

namespace OrleansLimiter.Cli.Commands;

/// <summary>
/// <c>limiter keys create --tenant T [--priority P] [--max-wait S]</c>, <c>limiter keys [list] [--json]</c>,
/// <c>limiter keys revoke &lt;id&gt;</c>: the gateway's virtual keys. A new key is made here, printed once,
/// and only its SHA-256 is sent to the cluster.
/// </summary>
internal static class KeysCommand
{
    public static Command Create()
    {
        var json = CommonOptions.Json();
        var command = new Command("keys", "the gateway's virtual keys: create one for a tenant, list them, revoke one") { json };
        command.SetConnectedAction((parse, c, _) => ListAsync(c, parse.GetValue(json)));

        var listJson = CommonOptions.Json();
        var list = new Command("list", "every key's id, tenant and defaults (the default); never the keys") { listJson };
        list.SetConnectedAction((parse, c, _) => ListAsync(c, parse.GetValue(listJson)));

        var tenant = new Option<string>("--tenant")
        {
            Description = "the tenant whose calls the key counts for (its share in the fair queue)",
            HelpName = "name",
            Required = true,
            Validators = { result => { if (Configuration.RateLimitingOptionsValidator.TenantNameProblem(result.GetValueOrDefault<string>()) is { } p) { result.AddError($"--tenant {p}"); } } },
        };
        var priority = CommonOptions.Priority("the tenant's wait class when a call does not send x-limiter-priority: Interactive, Normal or Batch (default Normal)");
        var maxWait = new Option<double?>("--max-wait")
        {
            Description = "the tenant's longest wait in seconds when a call does not send x-limiter-max-wait (default: the gateway's)",
            HelpName = "S",
            Validators = { result => { if (result.GetValueOrDefault<double?>() is { } s && !(s is >= 0 and <= MaxWaitSeconds)) { result.AddError($"--max-wait must be from 0 to {MaxWaitSeconds} seconds"); } } },
        };
        var createJson = CommonOptions.Json();
        var create = new Command("create", "make a new key for a tenant and print it once (only its SHA-256 is kept)") { tenant, priority, maxWait, createJson };
        create.SetConnectedAction(async (parse, c, _) =>
        {
            var key = VirtualKeyFormat.Create();
            var info = await Keys(c).AddAsync(new VirtualKeyRegistration(VirtualKeyFormat.Sha256(key), parse.GetRequiredValue(tenant), parse.GetValue(priority), parse.GetValue(maxWait)));
            if (parse.GetValue(createJson))
            {
                JsonOutput.Write(new { key, info.Id, info.Tenant, info.Priority, info.MaxWaitSeconds, info.CreatedAt });
            }
            else
            {
                Console.WriteLine(key);
                Console.Error.WriteLine($"{info.Id}: a key for tenant '{info.Tenant}'. It is shown only now; send it as the API key (Authorization: Bearer, or x-api-key).");
            }

            return ExitCodes.Ok;
        });

        var id = new Argument<string>("id") { Description = "the key's id, vk_… (limiter keys list)" };
        var revoke = new Command("revoke", "revoke a key: calls with it are refused (401) on every gateway within a second") { id };
        revoke.SetConnectedAction(async (parse, c, _) =>
        {
            var name = parse.GetRequiredValue(id);
            if (await Keys(c).RevokeAsync(name))
            {
                Console.WriteLine($"{name}: revoked");
                return ExitCodes.Ok;
            }

            Console.Error.WriteLine($"limiter: error: no valid key '{(name.Length > 64 ? name[..64] : name)}' (limiter keys list)");
            return ExitCodes.Usage;
        });

        command.Subcommands.Add(list);
        command.Subcommands.Add(create);
        command.Subcommands.Add(revoke);
        return command;
    }

    /// <summary>The longest default wait a key may carry, as the cluster checks it.</summary>
    private const double MaxWaitSeconds = 86_400;

    private static IVirtualKeysGrain Keys(ClusterConnection c) => c.Grains.GetGrain<IVirtualKeysGrain>(IVirtualKeysGrain.DefaultKey);

    private static async Task<int> ListAsync(ClusterConnection c, bool json)
    {
        var all = await Keys(c).ListAsync();
        if (json)
        {
            JsonOutput.Write(all);
            return ExitCodes.Ok;
        }

        foreach (var k in all)
        {
            var defaults = $"{(k.Priority is { } p ? $"  priority {p}" : string.Empty)}{(k.MaxWaitSeconds is { } w ? $"  max wait {w} s" : string.Empty)}";
            Console.WriteLine($"{k.Id,-16} {k.Tenant,-24} created {k.CreatedAt:u}{(k.RevokedAt is { } r ? $"  revoked {r:u}" : string.Empty)}{defaults}");
        }

        return ExitCodes.Ok;
    }
}
