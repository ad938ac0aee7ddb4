using System.CommandLine;
using System.Globalization;
using Lodestar.DependencyInjection;
using Lodestar.Etcd;
using Lodestar.Registration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Lodestar.Cli.Sources;

/// <summary>
/// etcd: <c>--address</c> (default http://127.0.0.1:2379; several members separated by commas, passed through as
/// <see cref="EtcdOptions.Address"/>) and <c>--prefix</c>; credentials only from the environment
/// (<c>ETCD_USERNAME</c>/<c>ETCD_PASSWORD</c>) or configuration (<c>Lodestar:Etcd:Username</c>/<c>Password</c>), never
/// from arguments, which other users can read in the process list.
/// </summary>
internal sealed class EtcdCliSource : ICliSource
{
    public static readonly Option<string?> Prefix = new("--prefix")
    {
        Description = "etcd: key prefix before the service name (default none: service 'orders' is the keys under 'orders/').",
    };

    public string Name => "etcd";

    public IReadOnlyList<Option> ResolveOptions => [CliOptions.Address, Prefix];

    public IReadOnlyList<Option> RegisterOptions => [CliOptions.Address, Prefix];

    public bool CanRegister => true;

    public void Configure(ILodestarBuilder builder, ParseResult parseResult)
    {
        var address = parseResult.GetValue(CliOptions.Address);
        var prefix = parseResult.GetValue(Prefix);
        builder.AddEtcd(o =>
        {
            if (!string.IsNullOrEmpty(address))
            {
                o.Address = address;
            }

            if (prefix is not null)
            {
                o.Prefix = prefix;
            }
        });
        builder.Services.AddSingleton<IPostConfigureOptions<EtcdOptions>>(static sp => new PostConfigureOptions<EtcdOptions>(Options.DefaultName, o =>
        {
            // The environment fills credentials that configuration left empty, as etcdctl's ETCDCTL_USER would.
            var console = sp.GetRequiredService<CliConsole>();
            if (string.IsNullOrEmpty(o.Username) && console.Environment("ETCD_USERNAME") is { Length: > 0 } username)
            {
                o.Username = username;
                o.Password = console.Environment("ETCD_PASSWORD");
            }
        }));
    }

    public void Check(IServiceProvider services, CliConsole console) => _ = services.GetRequiredService<IOptionsMonitor<EtcdOptions>>().CurrentValue;

    public IEnumerable<string?> Secrets(IServiceProvider services) => [services.GetRequiredService<IOptionsMonitor<EtcdOptions>>().CurrentValue.Password];

    public string LeftBehind(IServiceProvider services, ServiceRegistration registration)
    {
        var prefix = services.GetRequiredService<IOptionsMonitor<EtcdOptions>>().CurrentValue.Prefix;
        return string.Create(CultureInfo.InvariantCulture,
            $"its key '{prefix}{registration.ServiceName}/{registration.EffectiveInstanceId}' stays in etcd until its lease expires, within {registration.Ttl.TotalSeconds:0} s");
    }
}
