using Lodestar.Etcd;
using Lodestar.Etcd.Client.Internal;
using Lodestar.Etcd.Naming.Internal;
using Microsoft.Extensions.Logging.Abstractions;

namespace Lodestar.Fuzz.Targets;

internal static class EtcdTargets
{
    /// <summary>The body of a <c>/v3/kv/range</c> answer read through the etcd client, then each value decoded.</summary>
    public static readonly FuzzTarget Range = new(
        "etcd-range",
        "etcd /v3/kv/range answers (JSON gateway) and the values they hold",
        static input =>
        {
            using var client = new EtcdClient(new EtcdOptions { Address = "http://127.0.0.1:2379" }, TimeProvider.System, NullLogger<EtcdClient>.Instance, new FixedAnswer(input));
            var result = client.RangePrefixAsync("orders/", CancellationToken.None).GetAwaiter().GetResult();
            foreach (var kv in result.Kvs)
            {
                EtcdNamingFormat.TryParse(kv.Value, out _, out _);
            }
        },
        typeof(EtcdException));

    /// <summary>A <c>/v3/watch</c> stream read message by message, each event's value decoded.</summary>
    public static readonly FuzzTarget Watch = new(
        "etcd-watch",
        "etcd /v3/watch streams (JSON gateway) and the values they carry",
        static input =>
        {
            var response = new HttpResponseMessage(System.Net.HttpStatusCode.OK) { Content = new ByteArrayContent(input) };
            var stream = new EtcdWatchStream(response, "http://127.0.0.1:2379", static text => text, 1024 * 1024);
            try
            {
                for (var i = 0; i < 10_000; i++)
                {
                    var message = stream.ReadAsync(CancellationToken.None).GetAwaiter().GetResult();
                    if (message is null)
                    {
                        break;
                    }

                    foreach (var change in message.Events)
                    {
                        EtcdNamingFormat.TryParse(change.Kv.Value, out _, out _);
                    }
                }
            }
            finally
            {
                stream.DisposeAsync().AsTask().GetAwaiter().GetResult();
            }
        },
        typeof(EtcdException));

    /// <summary>One key's value in the layout of etcd's Go naming/endpoints package; a Try method, so nothing may escape.</summary>
    public static readonly FuzzTarget Naming = new(
        "etcd-naming",
        "etcd naming/endpoints values ({\"Op\":0,\"Addr\":...,\"Metadata\":...})",
        static input => EtcdNamingFormat.TryParse(input, out _, out _));
}
