using System.CommandLine;
using Lodestar.DependencyInjection;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.Cli.Sources;

/// <summary>
/// Consul: <c>--address</c> (else <c>Lodestar:Consul:Address</c>, <c>CONSUL_HTTP_ADDR</c>, http://127.0.0.1:8500),
/// <c>--consul-dc</c>, <c>--consul-tag</c>. The ACL token is read only from configuration or <c>CONSUL_HTTP_TOKEN</c>,
/// never from the command line, where other users could read it in the process list.
/// </summary>
internal sealed class ConsulCliSource : ICliSource
{
    private static readonly Option<string?> s_datacenter = new("--consul-dc") { Description = "Consul datacenter to query (default: the agent's)." };

    private static readonly Option<string[]> s_tags = new("--consul-tag")
    {
        Description = "Only Consul instances carrying this tag (repeatable; all must match).",
        AllowMultipleArgumentsPerToken = true,
    };

    public string Name => "consul";

    public IReadOnlyList<Option> Options => [s_datacenter, s_tags];

    public void Configure(ILodestarBuilder builder, ParseResult parseResult)
    {
        var address = parseResult.GetValue(CommonOptions.Address);
        var datacenter = parseResult.GetValue(s_datacenter);
        var tags = parseResult.GetValue(s_tags) ?? [];
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
}
