using System.CommandLine;
using Lodestar.Consul;
using Lodestar.DependencyInjection;
using Lodestar.Registration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Lodestar.Cli.Sources;

/// <summary>
/// Consul: <c>--address</c> (else <c>Lodestar:Consul:Address</c>, <c>CONSUL_HTTP_ADDR</c>, http://127.0.0.1:8500),
/// <c>--consul-dc</c>, <c>--consul-tag</c>. The ACL token is read only from configuration or <c>CONSUL_HTTP_TOKEN</c>,
/// never from the command line, where other users could read it in the process list.
/// </summary>
internal sealed class ConsulCliSource : ICliSource
{
    private static readonly Option<string?> s_datacenter = new("--consul-dc") { Description = "Consul: datacenter to query (default: the agent's)." };

    private static readonly Option<string[]> s_tags = new("--consul-tag")
    {
        Description = "Consul: only instances carrying this tag (repeatable; all must match).",
        AllowMultipleArgumentsPerToken = true,
    };

    private static readonly Option<string[]> s_registerTags = new("--tag") { Description = "Consul: tag(s) to publish.", AllowMultipleArgumentsPerToken = true };

    private static readonly Option<string?> s_httpCheck = new("--http-check") { Description = "Consul: HTTP health-check path the agent calls; default a TTL check kept passing by this command." };

    public string Name => "consul";

    public IReadOnlyList<Option> ResolveOptions => [CliOptions.Address, s_datacenter, s_tags];

    public IReadOnlyList<Option> RegisterOptions => [CliOptions.Address, s_registerTags, s_httpCheck];

    public bool CanRegister => true;

    /// <summary>Gets the tags given to <c>register</c>.</summary>
    public static string[] RegisterTags(ParseResult parseResult) => parseResult.GetValue(s_registerTags) ?? [];

    /// <summary>Gets the HTTP check path given to <c>register</c>.</summary>
    public static string? HttpCheck(ParseResult parseResult) => parseResult.GetValue(s_httpCheck);

    public void Configure(ILodestarBuilder builder, ParseResult parseResult)
    {
        var address = parseResult.GetValue(CliOptions.Address);
        var datacenter = parseResult.GetValue(s_datacenter);
        var tags = parseResult.GetValue(s_tags) ?? [];
        // The options validator says the same in its own words; this names the flag the user typed.
        if (!string.IsNullOrWhiteSpace(address) && (!Uri.TryCreate(address, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https")))
        {
            throw new CliException($"--address '{address}' is not an http or https URL of a Consul agent, such as {ConsulOptions.DefaultAddress}.");
        }

        builder.AddConsul(o =>
        {
            if (!string.IsNullOrWhiteSpace(address))
            {
                o.Address = address;
            }

            if (!string.IsNullOrWhiteSpace(datacenter))
            {
                o.Datacenter = datacenter;
            }

            foreach (var tag in tags)
            {
                o.Tags.Add(tag);
            }
        });
    }

    public void Check(IServiceProvider services, CliConsole console) => _ = services.GetRequiredService<IOptionsMonitor<ConsulOptions>>().CurrentValue;

    public IEnumerable<string?> Secrets(IServiceProvider services) => [services.GetRequiredService<IOptionsMonitor<ConsulOptions>>().CurrentValue.Token];

    public string LeftBehind(IServiceProvider services, ServiceRegistration registration)
    {
        var after = services.GetRequiredService<IOptionsMonitor<ConsulOptions>>().CurrentValue.DeregisterCriticalServiceAfter;
        return $"service '{registration.EffectiveInstanceId}' stays registered with the agent until its check has been critical for {after.TotalSeconds:0} s (DeregisterCriticalServiceAfter)";
    }
}
