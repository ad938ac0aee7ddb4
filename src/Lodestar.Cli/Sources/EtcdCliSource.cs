using System.CommandLine;
using Lodestar.DependencyInjection;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.Cli.Sources;

/// <summary>
/// etcd: <c>--address</c> (default http://127.0.0.1:2379; several members separated by commas, passed through as
/// <see cref="Lodestar.Etcd.EtcdOptions.Address"/>) and <c>--prefix</c>; credentials only from the environment
/// (<c>ETCD_USERNAME</c>/<c>ETCD_PASSWORD</c>) or configuration (<c>Lodestar:Etcd:Username</c>/<c>Password</c>), never
/// from arguments, which other users can read in the process list.
/// </summary>
internal sealed class EtcdCliSource : ICliSource
{
    public static readonly Option<string?> Prefix = new("--prefix")
    {
        Description = "etcd key prefix before the service name (etcd; default none: service 'orders' is the keys under 'orders/').",
    };

    public string Name => "etcd";

    public IReadOnlyList<Option> Options => [Prefix];

    public void Configure(ILodestarBuilder builder, ParseResult parseResult)
    {
        var address = parseResult.GetValue(CommonOptions.Address);
        var prefix = parseResult.GetValue(Prefix);
        var username = Environment.GetEnvironmentVariable("ETCD_USERNAME");
        var password = Environment.GetEnvironmentVariable("ETCD_PASSWORD");
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

            if (!string.IsNullOrEmpty(username))
            {
                o.Username = username;
                o.Password = password;
            }
        });
    }
}
