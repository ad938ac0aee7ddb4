using System.CommandLine;
using Lodestar.DependencyInjection;
using Lodestar.Dns;
using Lodestar.Registration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Lodestar.Cli.Sources;

/// <summary>
/// The DNS source: a host name gives its A/AAAA addresses (port from <c>--port</c>, a <c>name:port</c> suffix or a
/// URI), an <c>_service._proto.name</c> gives its SRV targets with their ports.
/// </summary>
internal sealed class DnsCliSource : ICliSource
{
    private static readonly Option<string[]> s_server = new("--server")
    {
        Description = "DNS: server as ip or ip:port (repeatable; tried in order). Default: the nameservers of /etc/resolv.conf.",
    };

    private static readonly Option<int?> s_port = new("--port")
    {
        Description = "DNS: port for the addresses of a plain host name (A/AAAA records carry none). Default 80.",
    };

    public string Name => "dns";

    public IReadOnlyList<Option> ResolveOptions => [s_server, s_port];

    public IReadOnlyList<Option> RegisterOptions => [];

    public bool CanRegister => false;

    public void Configure(ILodestarBuilder builder, ParseResult parseResult)
    {
        var servers = parseResult.GetValue(s_server) ?? [];
        var port = parseResult.GetValue(s_port);
        builder.AddDns(options =>
        {
            foreach (var server in servers)
            {
                options.Servers.Add(server);
            }

            if (port is { } p)
            {
                options.DefaultPort = p;
            }
        });
    }

    public void Check(IServiceProvider services, CliConsole console) => _ = services.GetRequiredService<IOptionsMonitor<DnsSourceOptions>>().CurrentValue;

    public IEnumerable<string?> Secrets(IServiceProvider services) => [];

    public string LeftBehind(IServiceProvider services, ServiceRegistration registration) => throw new NotSupportedException();
}
