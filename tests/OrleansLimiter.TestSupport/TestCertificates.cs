using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace OrleansLimiter.Tests.Infrastructure;

/// <summary>A throwaway certificate authority and a server certificate for 127.0.0.1, as PEM files.</summary>
public sealed class TestCertificates : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("orleanslimiter-tls-").FullName;

    public TestCertificates()
    {
        using var caKey = RSA.Create(2048);
        var caRequest = new CertificateRequest("CN=OrleansLimiter test CA", caKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        using var ca = caRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(2));

        using var serverKey = RSA.Create(2048);
        var serverRequest = new CertificateRequest("CN=127.0.0.1", serverKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        san.AddDnsName("localhost");
        serverRequest.CertificateExtensions.Add(san.Build());
        serverRequest.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        using var server = serverRequest.Create(ca, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1), RandomNumberGenerator.GetBytes(8));

        File.WriteAllText(CaCertificate, ca.ExportCertificatePem());
        File.WriteAllText(ServerCertificate, server.ExportCertificatePem());
        File.WriteAllText(ServerKey, serverKey.ExportPkcs8PrivateKeyPem());
    }

    public string CaCertificate => Path.Combine(_dir, "ca.crt");

    public string ServerCertificate => Path.Combine(_dir, "redis.crt");

    public string ServerKey => Path.Combine(_dir, "redis.key");

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
